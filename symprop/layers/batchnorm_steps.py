"""The batchnorm layer's derivations over the batch, in letters (``symprop derive`` of
gamma_j^(l), beta_j^(l) and the layer's input a_j^(l-1)).

Node j of sample i reads every sample through mu_j and sigma_j, so C is no sum of independent
per-sample losses and seed 000's per-sample chain stops here.  Each derivation works on a
batch of n samples with the sample index in every name (a_{i,j}^(l)), and every formula after
the definitions comes from SymPy: the local derivatives and the Jacobian are
:func:`symprop.layers.batchnorm.letter_forms` differentiated (:mod:`.derived`), the sum over
the batch is SymPy's vector-Jacobian product, and the compact form
gamma_j/(n sigma_j) (n g_{i,j} - sum_m g_{m,j} - xhat_{i,j} sum_m g_{m,j} xhat_{m,j}) is held
equal to it for every n.  Each result is proven before it is shown: SymPy's diff of the
composed layer for a symbolic batch of 2 and 3 samples, and the spec's own layer (its eps;
torch's F.batch_norm in training mode, or JAX) differentiated by autodiff at a random batch
(without either, high-precision differences of the written-out layer).
"""

from __future__ import annotations

import sympy

from .batchnorm_letters import compact_form, letter_forms
from .batchnorm_proofs import layer_proofs, matrix_proof
from .letter_steps import LetterDerivation, Names, Step, product
from .letters import LETTERS, N, SumJ, SumK, slot, slot_of

__all__ = ["batchnorm_derivation"]


class _Batch:
    """The printed names of node (or channel) ``j`` of batchnorm layer ``l``."""

    def __init__(self, config, j: int, spell=str):
        self.config, self.j = config, j
        first, l, lb = config.index == 1, spell(config.index), spell(config.index - 1)
        names = self.names = Names()
        self.n = names.symbol("n", "n", integer=True, positive=True)
        self.i, self.m = (names.symbol(s, s, integer=True, nonnegative=True) for s in "im")
        below = f"x_{{@,{j}}}" if first else f"a_{{@,{j}}}^{{({lb})}}"
        below_text = f"x_{{@,{j}}}" if first else f"a_{{@,{j}}}^({lb})"
        self.a_in = names.indexed(below, below_text)
        self.a_out = names.indexed(f"a_{{@,{j}}}^{{({l})}}", f"a_{{@,{j}}}^({l})")
        self.xhat = names.indexed(rf"\hat{{x}}_{{@,{j}}}^{{({l})}}", f"xhat_{{@,{j}}}^({l})")
        self.g = names.indexed(rf"\frac{{\partial C}}{{\partial a_{{@,{j}}}^{{({l})}}}}",
                               f"dC/da_{{@,{j}}}^({l})")
        self.C = names.symbol("C", "C")
        self.mu = names.symbol(rf"\mu_{{{j}}}^{{({l})}}", f"mu_{j}^({l})")
        self.sigma = names.symbol(rf"\sigma_{{{j}}}^{{({l})}}", f"sigma_{j}^({l})",
                                  positive=True)
        self.gamma = names.symbol(rf"\gamma_{{{j}}}^{{({l})}}", f"gamma_{j}^({l})")
        self.beta = names.symbol(rf"\beta_{{{j}}}^{{({l})}}", f"beta_{j}^({l})")
        self.eps = names.symbol(r"\epsilon", "eps", positive=True)
        self.spelled = l
        self.what = "node" if len(config.in_shape) == 1 else "channel"

    def total(self, body, var=None) -> sympy.Sum:
        var = var or self.m
        return sympy.Sum(body, (var, 0, self.n - 1))

    def display(self, expr: sympy.Expr, letters: dict[str, sympy.Symbol]) -> sympy.Expr:
        """A letter form of :func:`letter_forms` in these names: its sample letters (j, k, m)
        mapped by ``letters``, its sums over the samples as sums from 0 to n - 1."""
        slots = {("in", ""): self.a_in, ("out", ""): self.a_out, ("grad", ""): self.g,
                 ("named", "xhat"): self.xhat, ("named", "mu"): self.mu,
                 ("named", "sigma"): self.sigma, ("param", "gamma"): self.gamma,
                 ("param", "beta"): self.beta}

        def walk(e):
            if isinstance(e, (SumJ, SumK)):
                return self.total(walk(e.args[0]), letters[e.bound])
            info = slot_of(e)
            if info is not None:
                q = slots[(info.role, "" if info.role in ("in", "out", "grad") else info.name)]
                return q[letters[info.letters]] if info.letters else q
            if e == N:
                return self.n
            if e in LETTERS.values():
                return letters[str(e)]
            return e.func(*[walk(a) for a in e.args]) if e.args else e

        return walk(expr)

    # ------------------------------------------------------------------ steps
    def definitions(self) -> Step:
        c, i, m, n = self.config, self.i, self.m, self.n
        over = "over the batch" if len(c.in_shape) == 1 else \
            "over the batch and the positions"
        where = "" if len(c.in_shape) == 1 else (
            " On a map one mean and one deviation serve a whole channel: below, "
            f"{{i}} and {{m}} run over the {{n}} values of channel {self.j}, every sample at "
            "every position.")
        def centred(s):
            return sympy.Add(self.a_in[s], -self.mu, evaluate=False)

        var = sympy.Add(self.total(centred(m) ** 2) / n, self.eps, evaluate=False)
        equations = [(self.mu, self.total(self.a_in[m]) / n),
                     (self.sigma, sympy.sqrt(var)),
                     (self.xhat[i], centred(i) / self.sigma)]
        out = self.xhat[i]
        if c.affine:
            out = sympy.Add(product(self.gamma, self.xhat[i]), self.beta,
                            evaluate=False)
        equations.append((self.a_out[i], out))
        return Step(
            f"Layer {self.spelled} normalises {self.what} {self.j} {over}, in training mode: "
            "with a batch "
            f"of {{n}} samples, every name carries its sample's index {{i}}. {{mu}} is the "
            f"batch's mean, {{sigma}} the square root of its biased variance plus {{eps}} = "
            f"{c.eps:g}." + where, tuple(equations),
            {"n": n, "i": i, "m": m, "mu": self.mu, "sigma": self.sigma, "eps": self.eps})


def batchnorm_derivation(config, node, spec, autodiff, spell=str) -> LetterDerivation | None:
    """The derivation of ``node`` (gamma_j^(l), beta_j^(l), or a_j^(l-1)) over the batch, or
    None when the node is none of this layer's."""
    l = config.index
    if node.layer == l and node.kind in ("gamma", "beta"):
        return _parameter(_Batch(config, node.indices[0], spell), node.kind, spec, autodiff)
    below = node.kind == "x" if l == 1 else (node.kind == "a" and node.layer == l - 1)
    if below and len(node.indices) == len(config.in_shape):  # a map's node: its channel
        return _input(_Batch(config, node.indices[0], spell), spec, autodiff)
    return None


def _parameter(b: _Batch, kind: str, spec, autodiff) -> LetterDerivation:
    forms = letter_forms(b.config.affine, b.config.eps)
    p = b.gamma if kind == "gamma" else b.beta
    i = b.i
    local = b.display(forms.param_derivatives[kind], {"j": i})
    lhs = b.names.derivative(b.C, p)
    chain = b.total(product(b.g[i], b.names.derivative(b.a_out[i], p)), i)
    result = b.total(product(b.g[i], local) if local != 1 else b.g[i], i)
    steps = [
        b.definitions(),
        Step(f"{{p}} scales (or shifts) {b.what} {b.j} of every sample: it reaches {{C}} through "
             "every {out}, so the chain rule sums over the batch.",
             ((lhs, chain),), {"p": p, "C": b.C, "out": b.a_out[i]}),
        Step("Differentiating the definition of {out}:",
             ((b.names.derivative(b.a_out[i], p), local),), {"out": b.a_out[i]}),
        Step("So, with {g} what the layers above pass back for sample {i}:",
             ((lhs, result),), {"g": b.g[i], "i": i}),
    ]
    derivation = LetterDerivation("The gradient of {p} over a batch", lhs, result, steps,
                                  b.names, refs={"p": p})
    derivation.proofs = layer_proofs(b, spec, kind, autodiff)
    text, g = derivation.text, b.total(b.g[i], i)
    derivation.mistakes = [
        ((f"it leaves out {text(b.xhat[i])}: {text(p)} multiplies it, so "
         f"d{text(b.a_out[i])}/d{text(p)} = {text(b.xhat[i])}"), g),
        ((f"it has the layer's input {text(b.a_in[i])} where {text(b.xhat[i])} belongs: "
         f"{text(p)} scales the normalised value"), b.total(product(b.g[i], b.a_in[i]), i)),
    ] if kind == "gamma" else [
        ((f"that is dC/d{text(b.gamma)}: {text(p)} is added, so d{text(b.a_out[i])}/"
         f"d{text(p)} = 1"), b.total(product(b.g[i], b.xhat[i]), i))]
    return derivation


def _input(b: _Batch, spec, autodiff) -> LetterDerivation:
    forms = letter_forms(b.config.affine, b.config.eps)
    i, m, n = b.i, b.m, b.n
    refs = {"a": b.a_in[i], "C": b.C, "out_i": b.a_out[i], "mu": b.mu, "sigma": b.sigma,
            "out_m": b.a_out[m], "i": i, "m": m, "xhat": b.xhat[m]}
    lhs = b.names.derivative(b.C, b.a_in[i])
    jac = b.names.derivative(b.a_out[m], b.a_in[i])
    d_mu = b.display(forms.shared_derivative("mu"), {"k": i})
    d_sigma = b.display(forms.shared_derivative("sigma"), {"k": i})
    d_xhat = b.display(forms.jacobian_of(forms.named[slot("named", "xhat", "j")]),
                       {"j": m, "m": i})
    jacobian = b.display(forms.jacobians["in"], {"j": m, "m": i})
    vjp = b.display(forms.vjp["in"], {"j": m, "m": i})
    gamma = b.gamma if b.config.affine else sympy.S.One
    g_i, total_g = b.g[i], b.total(b.g[m])
    total_gx = b.total(product(b.g[m], b.xhat[m]))
    bracket = sympy.Add(product(n, g_i), -total_g,
                        -product(b.xhat[i], total_gx), evaluate=False)
    result = product(gamma / (n * b.sigma), bracket)
    steps = [
        b.definitions(),
        Step("{a} reaches {C} not only through {out_i}: {mu} and {sigma} read it, and "
             "every sample's {out_m} reads them. So the chain rule sums over every sample "
             "{m} of the batch:",
             ((lhs, b.total(product(b.g[m], jac))),), refs),
        Step("Differentiating the definitions, through {mu} and {sigma} (SymPy):",
             ((b.names.derivative(b.mu, b.a_in[i]), d_mu),
              (b.names.derivative(b.sigma, b.a_in[i]), d_sigma),
              (b.names.derivative(b.xhat[m], b.a_in[i]), d_xhat),
              (jac, jacobian)), refs),
        Step("Putting the Jacobian into the sum: the Kronecker delta keeps only the term "
             "{m} = {i}, and every other term splits into sums over the batch (SymPy):",
             ((lhs, vjp),), refs),
        Step("Taking out 1/{n}: the compact form, the same for every batch size (SymPy "
             "holds it equal to the sum above for every n).",
             ((lhs, result),), {**refs, "n": n}),
    ]
    derivation = LetterDerivation("The gradient of a batchnorm's input {a}", lhs, result,
                                  steps, b.names, refs=refs)
    compact = b.display(compact_form(b.config.affine), {"j": m, "m": i})
    derivation.proofs = [
        ("SymPy's vector-Jacobian product of the layer for every batch size n",
         lambda r: sympy.simplify(vjp - compact) == 0 and sympy.simplify(
             (r - vjp).doit()) == 0),
        *layer_proofs(b, spec, "input", autodiff)]
    derivation.judges = derivation.proofs[1:]
    text = derivation.text
    scale = gamma / b.sigma
    mean, spread = total_g / n, product(b.xhat[i], total_gx) / n
    derivation.mistakes = [
        ((f"it leaves out that {text(b.sigma)} reads every sample: the term "
         f"-{text(spread)} is missing"), scale * (g_i - mean)),
        ((f"it leaves out that {text(b.mu)} reads every sample: the term -{text(mean)} is "
         "missing"), scale * (g_i - spread)),
        ((f"it treats {text(b.mu)} and {text(b.sigma)} as constants, but both read every "
         "sample of the batch"), scale * g_i),
        (("it uses the unbiased variance's 1/(n - 1); in training mode the batch's variance "
         "is biased, 1/n"), scale * (g_i - mean - product(b.xhat[i], total_gx) / (n - 1))),
        *([(f"it leaves out {text(b.gamma)}, which scales every {text(b.xhat[i])}",
            result / gamma)] if b.config.affine else [])]
    return derivation


# -------------------------------------------------------------------- matrix form
def batchnorm_matrix_form(config, spec, autodiff, spell=str) -> LetterDerivation:
    """Seed 001's batch form of the layer's backward: the samples are the rows of G =
    dC/dA^(l) (after a conv, every sample at every position), and the sums over the batch
    are products with a column of ones; proven on a random batch as the scalar results."""
    b = _Batch(config, 0, spell)
    l, lb, names = spell(config.index), spell(config.index - 1), b.names
    below, below_text = ("X", "X") if config.index == 1 else (f"A^{{({lb})}}", f"A^({lb})")
    rows, cols = b.n, sympy.Symbol("n_l", integer=True, positive=True)
    scale, scale_text = (rf"\gamma^{{({l})}}", f"gamma^({l})") if config.affine else ("1", "1")
    mats = {}
    for key, latex, text, shape in [
            ("G", rf"\frac{{\partial C}}{{\partial A^{{({l})}}}}", f"dC/dA^({l})", (rows, cols)),
            ("X", rf"\hat{{X}}^{{({l})}}", f"Xhat^({l})", (rows, cols)),
            ("1", r"\mathbf{1}", "1", (rows, 1)),
            ("D", rf"\operatorname{{diag}}\left({scale} / \sigma^{{({l})}}\right)",
             f"diag({scale_text}/sigma^({l}))", (cols, cols)),
            ("dA", rf"\frac{{\partial C}}{{\partial {below}}}", f"dC/d{below_text}",
             (rows, cols)),
            ("dgamma", rf"\frac{{\partial C}}{{\partial \gamma^{{({l})}}}}",
             f"dC/dgamma^({l})", (1, cols)),
            ("dbeta", rf"\frac{{\partial C}}{{\partial \beta^{{({l})}}}}", f"dC/dbeta^({l})",
             (1, cols))]:
        mats[key] = sympy.MatrixSymbol(text, *shape)
        names.latex[mats[key]], names.text[mats[key]] = latex, text
    G, X, one, D = mats["G"], mats["X"], mats["1"], mats["D"]
    means = one * one.T
    result = sympy.MatMul(1 / rows, sympy.MatAdd(
        rows * G, -means * G, -sympy.HadamardProduct(X, means * sympy.HadamardProduct(G, X)),
        evaluate=False), D, evaluate=False)
    equations = [(mats["dA"], result)]
    if config.affine:
        equations = [(mats["dgamma"], one.T * sympy.HadamardProduct(G, X)),
                     (mats["dbeta"], one.T * G), *equations]
    rows_are = "the samples" if len(config.in_shape) == 1 else \
        "every sample at every position (the map's positions stacked under the batch)"
    step = Step(
        "The same results for every node at once, in the matrices of the batch form: the "
        f"rows of {{G}} are {rows_are}, its columns the nodes; {{one}} is a column of "
        "ones, so a product with it sums over the rows, and the division by {n} of every "
        "term but the first is the batch's means.",
        tuple(equations), {"G": G, "one": one, "n": rows})
    derivation = LetterDerivation(f"Batch normalisation in layer {l}: the batch form",
                                  mats["dA"], result, [step], names)
    truth = f"{autodiff.name} autodiff" if autodiff.name else "30-digit differences"
    derivation.proofs = [(f"{truth} of the spec's layer at a random batch, every node",
                          lambda r: matrix_proof(config, spec, [
                              *equations[:-1], (mats["dA"], r)], mats, rows, autodiff))]
    return derivation
