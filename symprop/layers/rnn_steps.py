"""The rnn layer's derivations through time, in letters (``symprop derive`` of u_jk^(l),
w_jk^(l) and b_j^(l)): backpropagation through time, unrolled for the spec's T.

The same W, U and b act at every step, so each weight's gradient is a sum over the steps of
delta_{t,j} times what the weight multiplies there, and delta_t comes from delta_(t+1) through
U: delta_{t,j} = (dC_0/da_{t,j} + sum_i delta_{t+1,i} u_ij) g'(z_{t,j}).  Every formula after
the definitions is SymPy's: the derivative of z_{t,j} by the weight, g's derivative, and
z_{t+1,i}'s derivative by h_{t,j}.  Each result is proven before it is shown
(:mod:`.rnn_proofs`).
"""

from __future__ import annotations

import sympy

from ..errors import SpecError
from .letter_steps import LetterDerivation, Names, Step, product
from .rnn_proofs import rnn_proofs
from .symbolic import activation_function

__all__ = ["Unrolled", "rnn_derivation", "unrolled_derivation"]


class Unrolled:
    """The printed names of rnn layer ``config`` (index l, T steps)."""

    def __init__(self, config, spell=str, spec=None):
        self.config = config
        #: a batchnorm above couples the samples: the loss is the batch's C, not C_0
        coupled = spec is not None and any(getattr(c, "COUPLES_SAMPLES", False)
                                           for c in spec.stack[config.index:])
        loss, loss_text = ("C", "C") if coupled else ("C_{0}", "C_0")
        custom = dict(spec.activations) if spec is not None else {}
        l, lb, self.spelled = spell(config.index), spell(config.index - 1), spell(config.index)
        names = self.names = Names()
        self.T, self.n, self.n_in = config.steps, config.units, config.n_in
        self.t, self.i, self.j, self.k = (names.symbol(s, s, integer=True) for s in "tijk")
        below, below_text = ("x_{@}", "x_{@}") if config.index == 1 else \
            (f"h_{{@}}^{{({lb})}}", f"h_{{@}}^({lb})")
        self.x = names.indexed(below, below_text)
        self.h = names.indexed(f"h_{{@}}^{{({l})}}", f"h_{{@}}^({l})")
        self.z = names.indexed(f"z_{{@}}^{{({l})}}", f"z_{{@}}^({l})")
        self.delta = names.indexed(rf"\delta_{{@}}^{{({l})}}", f"delta_{{@}}^({l})")
        self.dC_dh = names.indexed(rf"\frac{{\partial {loss}}}{{\partial h_{{@}}^{{({l})}}}}",
                                   f"d{loss_text}/dh_{{@}}^({l})")
        self.out = names.indexed(rf"\frac{{\partial {loss}}}{{\partial a_{{@}}^{{({l})}}}}",
                                 f"d{loss_text}/da_{{@}}^({l})")
        self.w = names.indexed(f"w_{{@}}^{{({l})}}", f"w_{{@}}^({l})", compact=True)
        self.u = names.indexed(f"u_{{@}}^{{({l})}}", f"u_{{@}}^({l})", compact=True)
        self.b = names.indexed(f"b_{{@}}^{{({l})}}", f"b_{{@}}^({l})")
        self.C0 = names.symbol(loss, loss_text)
        c = config
        self.g = activation_function(c.activation.name, c.activation.params, c.index, custom)

    def z_def(self, t, j) -> sympy.Expr:
        """z_{t,j} = sum_k w_jk x_{t,k} + sum_k u_jk h_{t-1,k} (+ b_j)."""
        k = self.k
        terms = [sympy.Sum(product(self.w[j, k], self.x[t, k]),
                           (k, 0, self.n_in - 1)),
                 sympy.Sum(product(self.u[j, k], self.h[t - 1, k]),
                           (k, 0, self.n - 1))]
        if self.config.bias:
            terms.append(self.b[j])
        return sympy.Add(*terms, evaluate=False)

    def param(self, node) -> sympy.Indexed:
        """The weight ``node`` names: u_jk, w_jk or b_j of this layer."""
        return {"u": self.u, "w": self.w, "b": self.b}[node.kind][node.indices]

    def local(self, expr: sympy.Expr, target: sympy.Indexed) -> sympy.Expr:
        """SymPy's d expr / d target, term by term: of a sum over k only the term whose k
        makes it read the target remains (k set to the index it stands for), as seed 000
        expands a sum and differentiates term by term."""
        base, index, total = target.base, target.indices, sympy.S.Zero
        for term in sympy.Add.make_args(expr):
            if not isinstance(term, sympy.Sum):
                total += sympy.diff(term, target)
                continue
            body, k = term.function, term.limits[0][0]
            for read in body.atoms(sympy.Indexed):
                if read.base == base and k in read.indices:
                    value = index[list(read.indices).index(k)]
                    if read.xreplace({k: value}) == target:
                        total += sympy.diff(body.xreplace({k: value}), target)
                        break
        return total

    def output_part(self, t, j=None) -> sympy.Expr:
        """What the layers above pass back to h_{t,j} directly: dC_0/da_{t,j} with
        sequence = true, dC_0/da_j at t = T only otherwise."""
        j = self.j if j is None else j
        if self.config.sequence:
            return self.out[t, j]
        return self.out[j] if t == self.T else sympy.S.Zero

    def dh(self, t, j=None) -> sympy.Expr:
        """dC_0/dh_{t,j}: the output's part, plus sum_i delta_{t+1,i} u_ij for t < T, where
        u_ij is SymPy's derivative of z_{t+1,i} by h_{t,j}."""
        j = self.j if j is None else j
        if t == self.T:
            return self.output_part(t, j)
        i = self.i
        through = self.local(self.z_def(t + 1, i), self.h[t, self.j]).xreplace({self.j: j})
        through = sympy.Sum(product(self.delta[t + 1, i], through),
                            (i, 0, self.n - 1))
        part = self.output_part(t, j)
        return through if part == 0 else sympy.Add(part, through, evaluate=False)

    def g_prime(self, t, j) -> sympy.Expr:
        """g'(z_{t,j}): SymPy's derivative of h_{t,j} = g(z_{t,j})."""
        return sympy.diff(self.g(self.z[t, j]), self.z[t, j])

    def delta_def(self, t, j=None) -> sympy.Expr:
        """delta_{t,j} = dC_0/dh_{t,j} g'(z_{t,j})."""
        j = self.j if j is None else j
        return product(self.dh(t, j), self.g_prime(t, j))


def rnn_derivation(config, node, spec, autodiff, spell=str) -> LetterDerivation | None:
    """The derivation of u_jk^(l), w_jk^(l) or b_j^(l) through time, or None for another
    node; proven by :func:`.rnn_proofs.rnn_proofs`."""
    if node.layer != config.index or node.kind not in ("u", "w", "b"):
        return None
    if config.activation.name == "g":
        raise SpecError("a derivation through time is proven on numbers, and the generic "
                        "activation g has none", where=f"layer {config.index} (rnn)",
                        hint="Give the layer a concrete activation, e.g. activation = "
                             "\"tanh\"")
    derivation, r = unrolled_derivation(config, node, spell, spec)
    derivation.proofs = rnn_proofs(r, node, derivation, spec, autodiff, unrolled_derivation)
    return derivation


def unrolled_derivation(config, node, spell=str, spec=None
                        ) -> tuple[LetterDerivation, Unrolled]:
    """The derivation of a weight of rnn layer ``config``, without its proofs (``spell``: a
    layer's number as printed, 2 or L-1)."""
    r = Unrolled(config, spell, spec)
    T, t, names = r.T, r.t, r.names
    J = node.indices[0]
    K = node.indices[1] if len(node.indices) > 1 else None
    p = r.param(node)
    what = {"u": "recurrent weight", "w": "input weight", "b": "bias"}[node.kind]
    lhs = names.derivative(r.C0, p)
    local = r.local(r.z_def(t, J), p)
    dz = names.derivative(r.z[t, J], p)
    dC_dz = names.derivative(r.C0, r.z[t, J])
    refs = {"p": p, "T": sympy.Integer(T), "C0": r.C0, "z": r.z[t, J], "t": t,
            "h0": r.h[0, r.k], "delta": r.delta[t, J], "hT": r.h[T, r.j],
            "h": r.h[t, r.j], "out": r.output_part(T)}
    reads = "the last step's {hT}" if not r.config.sequence else "every {h}"
    refs.update(z_next=r.z[t + 1, r.i], u_ij=r.u[r.i, r.j], hK=r.h[0, K if K is not None
                                                                    else r.k])
    definitions = Step(
        (f"Layer {r.spelled} runs the same weights at each of the {{T}} steps t = 1, ..., "
         f"{{T}}" if T > 1 else f"Layer {r.spelled} runs one step, t = 1")
        + f", from {{h0}} = 0; the layers above read {reads}.",
        ((r.z[t, r.j], r.z_def(t, r.j)), (r.h[t, r.j], r.g(r.z[t, r.j])), (r.h[0, r.k], 0)),
        refs)
    steps = [
        definitions,
        Step(f"{{p}} is one {what}, shared by every step: {{z}} reads it at t = 1, ..., {{T}},"
             " so {C0} depends on it through all of them, and the chain rule sums over the "
             "steps:" if T > 1 else "{p} is read by {z} at the one step:",
             ((lhs, sympy.Sum(product(dC_dz, dz), (t, 1, T))),), refs),
        Step("Expanding the sum over k in the definition of {z}, only the term with {p} "
             "remains:", ((dz, local),), refs),
        Step("With {delta} the accumulated gradient at {z}, and h = g(z):",
             ((r.delta[t, J], dC_dz, product(r.dC_dh[t, J], r.g_prime(t, J))),),
             refs),
        Step("Through time: for t < {T}, {h} reaches {C0} through the next step's "
             "{z_next} of every node i (SymPy's derivative of {z_next} by {h} is {u_ij}), and "
             "through the layers above where they read it; at the last step only the layers "
             "above read it:",
             ((r.dC_dh[t, r.j], r.dh(t)), (r.dC_dh[T, r.j], r.dh(T))), refs) if T > 1 else
        Step("With one step, only the layers above read {hT}:",
             ((r.dC_dh[T, r.j], r.dh(T)),), refs),
        Step(f"Unrolled for the spec's T = {T}, from the last step back to the first:",
             tuple((r.delta[s, J], r.delta_def(s, J)) for s in range(T, 0, -1)), refs),
    ]
    terms = [(s, local.xreplace({t: s})) for s in range(1, T + 1)]
    kept = [product(r.delta[s, J], f) if f != 1 else r.delta[s, J]
            for s, f in terms if not (node.kind == "u" and s == 1)]  # h_0 = 0
    result = sympy.Add(*kept, evaluate=False) if len(kept) > 1 else \
        (kept[0] if kept else sympy.S.Zero)  # with T = 1, U never acts
    note = " ({hK} = 0: the first step adds nothing)" if node.kind == "u" else ""
    steps.append(Step("So, summing over the steps" + note + ":",
                      ((lhs, sympy.Sum(product(r.delta[t, J], local) if local != 1
                                       else r.delta[t, J],
                                       (t, 1, T)), result),), refs))
    derivation = LetterDerivation(
        "The gradient of {p} through time", lhs, result, steps, names, refs={"p": p})
    derivation.mistakes = _mistakes(r, node, local, derivation.text)
    return derivation, r


def _mistakes(r: Unrolled, node, local: sympy.Expr, text) -> list:
    """The usual wrong results of backpropagation through time, in words."""
    T, t, J, p = r.T, r.t, node.indices[0], r.param(node)

    def over_steps(body, first=1):
        return sympy.Add(*[body.xreplace({t: s}) for s in range(first, T + 1)])

    out = [((f"it keeps only the last step: {text(p)} acts at every step, so its gradient "
            "sums over t"), (r.delta[t, J] * local).xreplace({t: T})),
           ((f"it has {text(r.dC_dh[t, J])} where {text(r.delta[t, J])} belongs: g'(z) is "
            "left out"), over_steps(r.dC_dh[t, J] * local))]
    if node.kind == "u":
        K = node.indices[1]
        out.append(((f"it pairs {text(r.delta[t, J])} with {text(r.h[t, K])}: {text(p)} "
                    f"multiplies the previous step's {text(r.h[t - 1, K])}"),
                    over_steps(r.delta[t, J] * r.h[t, K])))
    return out
