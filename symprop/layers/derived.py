"""What SymPy derives from a layer's letter form (see :mod:`.letters`), once per layer.

:class:`LetterForms` takes the formula of node j, the formulas of the layer's named
quantities (mu, sigma, xhat), the inputs it reads ("in": layer l-1, "from": layer m) and the
letters of its parameters, and derives, in letters:

* ``jacobians[role]``: d a_j / d a_m of that input, ``KroneckerDelta(j, m) D_j + D_k(k ->
  m)`` (the chain rule through the named quantities, each term written back in the layer's
  own names);
* ``param_derivatives[kind]``: d a_j / d p;
* ``vjp[role]``: sum_j G_j d a_j / d a_m, the gradient passed back to the input (G = dC/dA of
  this layer), with the Jacobian split into its diagonal and terms f(j) h(m) wherever it
  separates, so the sum over j is a row sum (a layernorm's backward costs O(n) per sample,
  not O(n^2)): G_m gamma_m/sigma - (sum_j G_j gamma_j + xhat_m sum_j G_j gamma_j xhat_j)/(n
  sigma);
* ``param_gradients[kind]``: G_j d a_j / d p, what a batch sums for dC/dp.

The array forms of generated code and the matrix form of documents print these; nothing in
them is written per kind.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

import sympy

from ..activations import absorb_sign
from .letters import LETTERS, SumJ, free_letters, rename, slot, slot_of, total_derivative

__all__ = ["LetterForms", "split_vjp"]

_J, _M = LETTERS["j"], LETTERS["m"]


class LetterForms:
    """The derived letter forms of one layer (see the module docstring)."""

    def __init__(self, output: sympy.Expr, named: Mapping[sympy.Symbol, sympy.Expr],
                 roles: tuple[str, ...], params: Mapping[str, str]):
        self.output = output
        self.named = dict(named)
        self.roles = roles
        self.params = dict(params)

    def rewrite(self, expr: sympy.Expr) -> sympy.Expr:
        """A derivative in the layer's own names: a named quantity's formula becomes its name
        (sqrt(var + eps) -> sigma), the output's becomes a_j, the input is written through a
        normalised quantity where one exists (a_j = mu + sigma xhat_j)."""
        for target, form in self.named.items():
            if form.is_Pow and form.args[1] == sympy.S.Half:
                base, power = form.args  # sigma = sqrt(base): base^r = sigma^(2r)
                expr = expr.replace(lambda t, b=base: t.is_Pow and t.args[0] == b,
                                    lambda t, q=target, p=power: q ** (t.args[1] / p))
                expr = expr.xreplace({base: target ** (1 / power)})
            elif form.free_symbols:
                expr = expr.xreplace({form: target})
        out = self.output
        for letter in "jk":  # a_j and, in a softmax's Jacobian, a_k
            form = rename(out, "j", letter) if letter != "j" else out
            if form.free_symbols and expr.has(*form.free_symbols):
                expr = expr.subs(form, slot("out", letters=letter))
        eliminated = False
        for q, form in self.named.items():
            in_j = slot("in", letters="j")
            if slot_of(q).letters == "j" and form.has(in_j):
                solved = sympy.solve(sympy.Eq(form, q), in_j)
                if len(solved) == 1:
                    expr = expr.xreplace({in_j: solved[0],
                                          slot("in", letters="k"): rename(solved[0], "j", "k")})
                    eliminated = True
        # written through a normalised quantity, terms cancel only once expanded
        return absorb_sign(sympy.factor_terms(sympy.expand(expr) if eliminated else expr))

    @functools.cached_property
    def jacobians(self) -> dict[str, sympy.Expr]:
        memo: dict = {}
        return {role: self.jacobian_of(self.output, role, memo) for role in self.roles}

    def jacobian_of(self, form: sympy.Expr, role: str = "in", memo: dict | None = None
                    ) -> sympy.Expr:
        """d form_j / d role_m of a form of node j (the output, or a named quantity such as
        xhat_j): its own input's path times KroneckerDelta(j, m), plus every other path."""
        direct = total_derivative(form, slot(role, letters="j"), self.named, memo)
        summed = total_derivative(form, slot(role, letters="k"), self.named, memo)
        return sympy.factor_terms(sympy.KroneckerDelta(_J, _M) * self.rewrite(direct)
                                  + rename(self.rewrite(summed), "k", "m"))

    def shared_derivative(self, name: str, role: str = "in") -> sympy.Expr:
        """d q / d role_k of a named quantity q of the whole layer (mu, sigma), in letters."""
        q = slot("named", name)
        return self.rewrite(total_derivative(self.named[q], slot(role, letters="k"),
                                             self.named))

    @functools.cached_property
    def param_derivatives(self) -> dict[str, sympy.Expr]:
        memo: dict = {}
        return {kind: self.rewrite(total_derivative(
            self.output, slot("param", kind, letters), self.named, memo))
            for kind, letters in self.params.items()}

    @functools.cached_property
    def vjp(self) -> dict[str, sympy.Expr]:
        return {role: split_vjp(j) for role, j in self.jacobians.items()}

    @functools.cached_property
    def param_gradients(self) -> dict[str, sympy.Expr]:
        grad = slot("grad", letters="j")
        return {kind: grad * d for kind, d in self.param_derivatives.items()}


def split_vjp(jacobian: sympy.Expr) -> sympy.Expr:
    """sum_j G_j J(j, m), in letter m: the diagonal part G_m D(m), each separable term
    h(m) sum_j G_j f(j), and what mixes j and m (a custom layer's c_jm) summed as it is."""
    delta = sympy.KroneckerDelta(_J, _M)
    diagonal, separable, mixed = [], {}, []
    for term in sympy.Add.make_args(sympy.expand(jacobian)):
        factors = sympy.Mul.make_args(term)
        if delta in factors:
            diagonal.append(sympy.Mul(*[f for f in factors if f != delta]))
            continue
        by_j, by_m, both = [], [], []
        for f in factors:
            letters = free_letters(f) & {"j", "m"}
            (both if letters == {"j", "m"} else by_m if letters == {"m"} else by_j).append(f)
        if both:
            mixed.append(term)
        else:
            separable.setdefault(sympy.Mul(*by_m), []).append(sympy.Mul(*by_j))
    grad_j, grad_m = slot("grad", letters="j"), slot("grad", letters="m")
    total = grad_m * rename(sympy.Add(*diagonal), "j", "m")
    for by_m, by_j in separable.items():
        total += by_m * _row_sum(grad_j * sympy.Add(*by_j))
    if mixed:
        total += SumJ(grad_j * sympy.Add(*mixed))
    return absorb_sign(sympy.factor_terms(total))


def _row_sum(expr: sympy.Expr) -> sympy.Expr:
    """sum_j of ``expr``, with the factors that do not depend on j pulled out."""
    inside, outside = [], []
    for f in sympy.Mul.make_args(sympy.factor_terms(expr)):
        (inside if "j" in free_letters(f) else outside).append(f)
    return sympy.Mul(*outside) * SumJ(sympy.Mul(*inside))
