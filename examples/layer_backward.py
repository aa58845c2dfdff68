"""Hand-written layer backward functions in the course convention, checked one layer at a time
against examples/residual.toml (README, "Checking one layer's backward"):

    symprop check examples/residual.toml --function examples/layer_backward.py:dense_layer --layer 1
    symprop check examples/residual.toml --function examples/layer_backward.py:layernorm --layer 2
    symprop check examples/batchnorm.toml --function examples/layer_backward.py:batchnorm --layer 2

The course functions (``affine_forward`` / ``affine_backward`` with w of shape (D, M), a
``cache`` between them) are wrapped by an adapter of symprop's form ``NAME(params, A, dOut)``
that runs the forward for the cache, then the backward, and transposes where layouts differ.
"""

import numpy as np


# ------------------------------------------------------------ the course's own functions
def affine_forward(x, w, b):
    """out = x w + b, x of shape (N, D), w of shape (D, M)."""
    return x @ w + b, (x, w, b)


def affine_backward(dout, cache):
    x, w, _ = cache
    return dout @ w.T, x.T @ dout, dout.sum(axis=0)


def tanh_forward(x):
    out = np.tanh(x)
    return out, out


def tanh_backward(dout, cache):
    return dout * (1 - cache ** 2)


def layernorm_forward(x, gamma, beta, eps=1e-5, ddof=0):
    mu = x.mean(axis=1, keepdims=True)
    sigma = np.sqrt(x.var(axis=1, ddof=ddof, keepdims=True) + eps)
    xhat = (x - mu) / sigma
    return gamma * xhat + beta, (xhat, sigma, gamma)


def layernorm_backward(dout, cache):
    """dx = (g - mean(g) - xhat mean(g xhat)) / sigma with g = dout gamma, per sample."""
    xhat, sigma, gamma = cache
    g = dout * gamma
    dx = (g - g.mean(axis=1, keepdims=True)
          - xhat * (g * xhat).mean(axis=1, keepdims=True)) / sigma
    return dx, (dout * xhat).sum(axis=0), dout.sum(axis=0)


def layernorm_backward_no_variance(dout, cache):
    """A classic mistake: sigma treated as a constant (its dependence on x left out)."""
    xhat, sigma, gamma = cache
    g = dout * gamma
    return (g - g.mean(axis=1, keepdims=True)) / sigma, (dout * xhat).sum(axis=0), \
        dout.sum(axis=0)


def batchnorm_forward(x, gamma, beta, eps=1e-5):
    """Training mode: each column normalised with the batch's mean and biased variance."""
    mu = x.mean(axis=0)
    sigma = np.sqrt(x.var(axis=0) + eps)
    xhat = (x - mu) / sigma
    return gamma * xhat + beta, (xhat, sigma, gamma)


def batchnorm_backward(dout, cache):
    """dx = (g - mean(g) - xhat mean(g xhat)) / sigma with g = dout gamma, means over the
    batch: every sample's x reaches every output through mu and sigma."""
    xhat, sigma, gamma = cache
    g = dout * gamma
    dx = (g - g.mean(axis=0) - xhat * (g * xhat).mean(axis=0)) / sigma
    return dx, (dout * xhat).sum(axis=0), dout.sum(axis=0)


def batchnorm_backward_per_sample(dout, cache):
    """A classic mistake: mu and sigma treated as constants, as if each sample stood alone."""
    xhat, sigma, gamma = cache
    return dout * gamma / sigma, (dout * xhat).sum(axis=0), dout.sum(axis=0)


def batchnorm_backward_no_mean(dout, cache):
    """A classic mistake: the mean's path left out (only the variance's kept)."""
    xhat, sigma, gamma = cache
    g = dout * gamma
    return (g - xhat * (g * xhat).mean(axis=0)) / sigma, (dout * xhat).sum(axis=0), \
        dout.sum(axis=0)


# ------------------------------------------------------------ adapters: symprop's form
def dense_layer(params, A, dOut):
    """Layer 1 of residual.toml, dense + tanh: symprop's W is (n_l, n_(l-1)), the course's
    w is (D, M) = W^T, so w = W.T going in and dW = dw.T coming out."""
    z, affine_cache = affine_forward(A, params["W"].T, params["b"])
    _, tanh_cache = tanh_forward(z)
    dx, dw, db = affine_backward(tanh_backward(dOut, tanh_cache), affine_cache)
    return {"A": dx, "W": dw.T, "b": db}


def layernorm(params, A, dOut):
    """Layer 2 of residual.toml: right."""
    _, cache = layernorm_forward(A, params["gamma"], params["beta"])
    dx, dgamma, dbeta = layernorm_backward(dOut, cache)
    return {"A": dx, "gamma": dgamma, "beta": dbeta}


def layernorm_sigma_constant(params, A, dOut):
    """Wrong: the backward treats sigma as a constant."""
    _, cache = layernorm_forward(A, params["gamma"], params["beta"])
    dx, dgamma, dbeta = layernorm_backward_no_variance(dOut, cache)
    return {"A": dx, "gamma": dgamma, "beta": dbeta}


def layernorm_unbiased(params, A, dOut):
    """Wrong: the forward's variance divides by n - 1 (np.var(ddof=1), torch.var's default)."""
    _, cache = layernorm_forward(A, params["gamma"], params["beta"], ddof=1)
    dx, dgamma, dbeta = layernorm_backward(dOut, cache)
    return {"A": dx, "gamma": dgamma, "beta": dbeta}


def batchnorm(params, A, dOut):
    """Layer 2 of batchnorm.toml: right."""
    _, cache = batchnorm_forward(A, params["gamma"], params["beta"])
    dx, dgamma, dbeta = batchnorm_backward(dOut, cache)
    return {"A": dx, "gamma": dgamma, "beta": dbeta}


def batchnorm_per_sample(params, A, dOut):
    """Wrong: mu and sigma taken as constants."""
    _, cache = batchnorm_forward(A, params["gamma"], params["beta"])
    dx, dgamma, dbeta = batchnorm_backward_per_sample(dOut, cache)
    return {"A": dx, "gamma": dgamma, "beta": dbeta}


def batchnorm_no_mean(params, A, dOut):
    """Wrong: the backward leaves out the mean's dependence on x."""
    _, cache = batchnorm_forward(A, params["gamma"], params["beta"])
    dx, dgamma, dbeta = batchnorm_backward_no_mean(dOut, cache)
    return {"A": dx, "gamma": dgamma, "beta": dbeta}


def rnn_backward_overwrite(params, A, dOut):
    """Backpropagation through time with the gradient from step t+1 assigned over the one
    from the output (for an rnn whose whole sequence is its output): the classic dh = ...
    instead of dh += ... ."""
    W, U = params["W"], params["U"]
    b = params.get("b", 0.0)
    batch, T, _ = A.shape
    H = np.zeros((batch, T + 1, W.shape[0]))
    for t in range(T):
        H[:, t + 1] = np.tanh(A[:, t] @ W.T + H[:, t] @ U.T + b)
    dW, dU, db, dX = np.zeros_like(W), np.zeros_like(U), np.zeros(W.shape[0]), np.zeros_like(A)
    carry = np.zeros((batch, W.shape[0]))
    for t in reversed(range(T)):
        dh = carry if t < T - 1 else dOut[:, t]  # wrong: dOut[:, t] + carry
        delta = dh * (1 - H[:, t + 1] ** 2)
        dW += delta.T @ A[:, t]
        dU += delta.T @ H[:, t]
        db += delta.sum(0)
        dX[:, t] = delta @ W
        carry = delta @ U
    return {"A": dX, "W": dW, "U": dU, **({"b": db} if "b" in params else {})}
