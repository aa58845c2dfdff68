"""Hand-written layer backward functions as course solutions write them, right and wrong
(``check --layer`` must tell which, and name each wrong one's mistake).  NumPy only: these
are the user's files."""

import numpy as np

P = 1  # the conv's padding in CONV (0 in CONV0)


# ------------------------------------------------------------------ dense
def _softmax(Z):
    e = np.exp(Z - Z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def dense_tanh(params, A, dOut):
    W, b = params["W"], params["b"]
    D = dOut * (1 - np.tanh(A @ W.T + b) ** 2)
    return {"A": D @ W, "W": D.T @ A, "b": D.sum(0)}


def dense_tanh_no_prime(params, A, dOut):
    W = params["W"]
    return {"A": dOut @ W, "W": dOut.T @ A, "b": dOut.sum(0)}


def dense_tanh_through_WT(params, A, dOut):
    right = dense_tanh(params, A, dOut)
    D = dOut * (1 - np.tanh(A @ params["W"].T + params["b"]) ** 2)
    return {**right, "A": D @ params["W"].T}


def dense_tanh_dW_transposed(params, A, dOut):
    right = dense_tanh(params, A, dOut)
    return {**right, "W": right["W"].T}


def dense_tanh_averaged(params, A, dOut):
    right = dense_tanh(params, A, dOut)
    return {**right, "W": right["W"] / len(A)}


def dense_softmax(params, A, dOut):
    W, b = params["W"], params["b"]
    a = _softmax(A @ W.T + b)
    D = a * (dOut - (dOut * a).sum(1, keepdims=True))
    return {"A": D @ W, "W": D.T @ A, "b": D.sum(0)}


def dense_softmax_diagonal(params, A, dOut):
    W, b = params["W"], params["b"]
    a = _softmax(A @ W.T + b)
    D = dOut * a * (1 - a)
    return {"A": D @ W, "W": D.T @ A, "b": D.sum(0)}


def dense_tanh_dA_transposed(params, A, dOut):
    right = dense_tanh(params, A, dOut)
    return {**right, "A": right["A"].T}


def dense_tanh_complex(params, A, dOut):
    right = dense_tanh(params, A, dOut)
    return {**right, "b": right["b"] + 0j}


# ------------------------------------------------------------------ activation layers
def tanh(params, A, dOut):
    return {"A": dOut * (1 - np.tanh(A) ** 2)}


def tanh_no_prime(params, A, dOut):
    return {"A": dOut}


def softmax(params, A, dOut):
    a = _softmax(A)
    return {"A": a * (dOut - (dOut * a).sum(1, keepdims=True))}


def softmax_diagonal(params, A, dOut):
    a = _softmax(A)
    return {"A": dOut * a * (1 - a)}


# ------------------------------------------------------------------ layernorm
def _layernorm(params, A, dOut, eps=1e-5, ddof=0):
    mu = A.mean(1, keepdims=True)
    sigma = np.sqrt(A.var(1, ddof=ddof, keepdims=True) + eps)
    xhat = (A - mu) / sigma
    return xhat, sigma, dOut * params["gamma"]


def layernorm(params, A, dOut):
    xhat, sigma, g = _layernorm(params, A, dOut)
    dA = (g - g.mean(1, keepdims=True) - xhat * (g * xhat).mean(1, keepdims=True)) / sigma
    return {"A": dA, "gamma": (dOut * xhat).sum(0), "beta": dOut.sum(0)}


def layernorm_no_variance(params, A, dOut):
    _xhat, sigma, g = _layernorm(params, A, dOut)
    return {**layernorm(params, A, dOut), "A": (g - g.mean(1, keepdims=True)) / sigma}


def layernorm_no_mean(params, A, dOut):
    xhat, sigma, g = _layernorm(params, A, dOut)
    return {**layernorm(params, A, dOut),
            "A": (g - xhat * (g * xhat).mean(1, keepdims=True)) / sigma}


def layernorm_unbiased(params, A, dOut):
    xhat, sigma, g = _layernorm(params, A, dOut, ddof=1)
    dA = (g - g.mean(1, keepdims=True) - xhat * (g * xhat).mean(1, keepdims=True)) / sigma
    return {"A": dA, "gamma": (dOut * xhat).sum(0), "beta": dOut.sum(0)}


def layernorm_dgamma_without_xhat(params, A, dOut):
    return {**layernorm(params, A, dOut), "gamma": dOut.sum(0)}


# ------------------------------------------------------------------ conv2d (relu, bias)
def _conv(params, A, pad):
    W, b = params["W"], params["b"]
    n, _C, H, Wd = A.shape
    k = W.shape[2]
    Ap = np.pad(A, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    Ho, Wo = H + 2 * pad - k + 1, Wd + 2 * pad - k + 1
    Z = np.zeros((n, W.shape[0], Ho, Wo))
    for p in range(Ho):
        for q in range(Wo):
            Z[:, :, p, q] = np.einsum("icuv,ocuv->io", Ap[:, :, p:p + k, q:q + k], W) + b
    return Ap, Z, k, Ho, Wo


def _conv_backward(params, A, dOut, pad):
    """-> (dW, db, dA of the padded input), as a loop over positions."""
    W = params["W"]
    Ap, Z, k, Ho, Wo = _conv(params, A, pad)
    D = dOut * (Z > 0)
    dW, dAp = np.zeros_like(W), np.zeros_like(Ap)
    for p in range(Ho):
        for q in range(Wo):
            dW += np.einsum("io,icuv->ocuv", D[:, :, p, q], Ap[:, :, p:p + k, q:q + k])
            dAp[:, :, p:p + k, q:q + k] += np.einsum("io,ocuv->icuv", D[:, :, p, q], W)
    return dW, D.sum((0, 2, 3)), dAp


def conv(params, A, dOut):
    dW, db, dAp = _conv_backward(params, A, dOut, P)
    H, Wd = A.shape[2:]
    return {"A": dAp[:, :, P:P + H, P:P + Wd], "W": dW, "b": db}


def conv_padding_kept(params, A, dOut):
    dW, db, dAp = _conv_backward(params, A, dOut, P)
    return {"A": dAp, "W": dW, "b": db}


def conv_padding_removed_twice(params, A, dOut):
    right = conv(params, A, dOut)
    return {**right, "A": right["A"][:, :, P:-P, P:-P]}


def conv_kernel_flipped(params, A, dOut):
    right = conv(params, A, dOut)
    return {**right, "W": right["W"][:, :, ::-1, ::-1]}


def conv_dA_flipped(params, A, dOut):
    right = conv(params, A, dOut)
    return {**right, "A": right["A"][:, :, ::-1, ::-1]}


def conv0_sliced(params, A, dOut):
    dW, db, dAp = _conv_backward(params, A, dOut, 0)
    return {"A": dAp[:, :, 0:-0, 0:-0], "W": dW, "b": db}  # [P:-P] with P = 0


# ------------------------------------------------------------------ pooling, loops as in class
def _pool(A, dOut, k, s, reduce, combine, every_max=False):
    dA = np.zeros_like(A)
    n, C, Ho, Wo = dOut.shape
    for i in range(n):
        for c in range(C):
            for p in range(Ho):
                for q in range(Wo):
                    window = A[i, c, p * s:p * s + k, q * s:q * s + k]
                    if reduce == "max" and every_max:
                        share = (window == window.max()).astype(float)
                    elif reduce == "max":
                        share = np.zeros_like(window)
                        share.flat[window.argmax()] = 1
                    else:
                        share = np.full_like(window, 1 / k ** 2)
                    part = share * dOut[i, c, p, q]
                    if combine == "=":
                        dA[i, c, p * s:p * s + k, q * s:q * s + k] = part
                    else:
                        dA[i, c, p * s:p * s + k, q * s:q * s + k] += part
    return dA


def maxpool_3_2(params, A, dOut):
    return {"A": _pool(A, dOut, 3, 2, "max", "+=")}


def maxpool_3_2_assigned(params, A, dOut):
    return {"A": _pool(A, dOut, 3, 2, "max", "=")}


def maxpool_3_2_every_max(params, A, dOut):
    return {"A": _pool(A, dOut, 3, 2, "max", "+=", every_max=True)}


def avgpool_2_1(params, A, dOut):
    return {"A": _pool(A, dOut, 2, 1, "mean", "+=")}


def avgpool_2_1_assigned(params, A, dOut):
    return {"A": _pool(A, dOut, 2, 1, "mean", "=")}


# ------------------------------------------------------------------ broken
def raises(params, A, dOut):
    return params["W7"]


def exits(params, A, dOut):
    raise SystemExit(1)


def not_a_dict(params, A, dOut):
    return [A]


def no_bias(params, A, dOut):
    right = dense_tanh(params, A, dOut)
    return {"A": right["A"], "W": right["W"]}
