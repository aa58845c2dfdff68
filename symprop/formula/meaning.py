r"""What a parsed formula means for one network: :mod:`.syntax` values -> SymPy.

Rules of reading (design.md section 4, seed 000):

* a node name is the network's symbol (a_k^(0) is the input x_k); a, z and delta keep their
  layered definitions, which evaluation and proofs expand; Nielsen's a^{l-1}_k is a_k^{(l-1)};
* ``C`` is C_0, the loss of one sample, unless the formula sums C_i over the samples (seed
  000's ``C = 1/n sum_i C_i``): then it is the batch loss;
* ``g^{(l)}`` / ``g'^{(l)}`` is layer l's activation of the spec and its derivative (the layer
  may be left out when the argument is a z_j^(l)); ``\sigma`` is the sigmoid whatever the spec
  says;
* ``\frac{\partial C_0}{\partial v}`` is the true derivative; ``\frac{\partial X}{\partial v}``
  of a node or of an expression differentiates through every quantity that depends on v;
* in ``\sum_{j=0}^{n-1}``, n is the width of the layer j runs over; a sum whose body holds
  C_i runs over the samples of a batch; elsewhere n is the batch size in a formula about the
  batch loss C and the output width in a formula about one sample's C_0.

Every symbol and function comes from a table; nothing the user typed is evaluated.
"""

from __future__ import annotations

import sympy

from ..activations import ACTIVATIONS, Softmax, activation_class
from ..chain import BATCH_SIZE
from ..derivation import Backprop
from ..errors import NameLookupError
from ..notation import KINDS, SHARED_KINDS, Node
from .brackets import LOWER as BRACKETS
from .parser import FormulaError
from .scope import AtSample, BatchSum, FreeIndexError, Scope
from .sums import _WIDTH, SumsMixin, node_layer
from .syntax import (
    Add,
    Call,
    Deriv,
    Div,
    Dots,
    Epsilon,
    Equation,
    Euler,
    Expr,
    Group,
    Kronecker,
    Layer,
    Loss,
    Mul,
    Neg,
    NodeRef,
    Num,
    Pi,
    Pow,
    Shifted,
    Size,
    Steps,
    Sum,
    bound_letters,
    walk,
)

__all__ = ["AtSample", "BatchSum", "FreeIndexError", "Meaning", "Scope", "is_batch_formula"]

MAX_EXPONENT = 1000


class OutsideMap(Exception):
    """A node that letter arithmetic (``a_{c,p+u-1,q}``) places outside its map: zero, as
    the zero padding and the derivation's own sums make it."""


def is_batch_formula(equation: Equation) -> bool:
    """Whether the formula speaks of a batch: C_i, one sample's loss by a letter, which sums
    over the samples (seed 000's C = 1/n sum_i C_i).  Otherwise, in index notation, C is the
    loss of one sample, C_0, as in seed 000's derivations and Nielsen's book."""
    return any(isinstance(e, Loss) and isinstance(e.sample, str) for e in walk(equation))


class Meaning(SumsMixin):
    """Lowers syntax to SymPy for the network of ``engine``."""

    def __init__(self, engine: Backprop, text: str, *, batch: bool = False,
                 batch_size: int = 3, source: str | None = None, named_as_g: bool = False):
        self.engine = engine
        #: Read \sigma and tanh as the layer's g (to tell whether a formula holds for any g
        #: once the activation it names is generalised).
        self.named_as_g = named_as_g
        self.graph = engine.graph
        self.text = text
        self.batch = batch
        self.batch_size = batch_size
        self.source = source
        self.terms = 0

    def error(self, what: str, expr: Expr, hint: str | None = None) -> FormulaError:
        return FormulaError(what, text=self.text, position=expr.span[0], where=self.source,
                            hint=hint)

    def lower(self, expr: Expr, scope: Scope | None = None) -> sympy.Expr:
        scope = scope or Scope()
        return self.TABLE[type(expr)](self, expr, scope)

    # ---------------------------------------------------------------- nodes
    def layer(self, layer: Layer, expr: Expr, scope: Scope) -> int:
        if layer.base is None:
            return layer.offset
        if layer.base == "L":
            return self.graph.L + layer.offset
        if layer.base not in scope.bound:
            raise FreeIndexError(layer.base, f"the layer {layer.text()} is not bound",
                                 text=self.text, position=expr.span[0], where=self.source,
                                 hint=f"Name {layer.base} on the left side (a general formula) "
                                      "or write L, L-1 or a number")
        return scope.bound[layer.base] + layer.offset

    def missing(self, expr: Expr, scope: Scope) -> str | None:
        """Why ``expr`` names something this network lacks at ``scope``'s letter values (a
        layer past the output, a node beyond a width, g of a layer without one), or None.
        Sum indices count as 0, so only the layers and free letters decide."""
        sums = Scope({**dict.fromkeys(bound_letters(expr), 0),
                      **scope.bound}, scope.sample)
        for e in walk(expr):
            try:
                if isinstance(e, NodeRef):
                    self.node(e, sums)
                elif isinstance(e, Call) and e.name == "g":
                    self._activation(e, sums)  # a layer without g, or a softmax
            except OutsideMap:
                continue  # letter arithmetic at the sums' first values: zero there, not absent
            except FreeIndexError:
                raise
            except FormulaError as exc:
                return f"{self.text[e.span[0]:e.span[1]].strip()}: {exc.what}"
        return None

    def index(self, index: int | str | Shifted, expr: Expr, scope: Scope) -> int:
        if isinstance(index, int):
            return index
        if isinstance(index, Shifted):
            return index.value({letter: self.index(letter, expr, scope)
                                for letter in index.letters})
        if index not in scope.bound:
            raise FreeIndexError(index, f"the index {index} is not bound", text=self.text,
                                 position=expr.span[0], where=self.source,
                                 hint=f"Sum over it (\\sum_{{{index}=0}}^{{n-1}}) or name it on "
                                      "the left side")
        return scope.bound[index]

    def node(self, ref: NodeRef, scope: Scope) -> Node:
        indices = [self.index(i, ref, scope) for i in ref.indices]
        layer = self.layer(ref.layer, ref, scope) if ref.layer is not None else None
        kinds = self.graph.kinds
        if ref.kind not in kinds:
            own = sorted(set(kinds) - set(KINDS))
            raise self.error(f"this network has no {ref.kind}", ref,
                             hint="Its own names besides seed 000's: " + (", ".join(own) or
                                                                          "none"))
        # counted as the layer named counts it: an rmsnorm's r^(l), a custom layer's r_j^(l)
        count = (kinds if layer is None else self.graph.kinds_of(layer)).get(
            ref.kind, kinds[ref.kind])[1]
        shape = self.map_shape(ref.kind, layer)
        shifted = any(isinstance(i, Shifted) for i in ref.indices)
        if shape is not None:
            count = len(shape)
            if len(indices) == count and not all(0 <= i < n for i, n in zip(indices, shape)):
                if shifted:
                    raise OutsideMap
                raise self.error(f"{self.text[ref.span[0]:ref.span[1]].strip()} lies outside "
                                 f"its array, of shape {list(shape)}", ref,
                                 hint="Indices run from 0 along each axis (channel first)")
        if count == 1 and len(indices) == 2 and all(isinstance(i, int) for i in ref.indices):
            indices = [int("".join(map(str, indices)))]  # c_{12} of a parameter with one index
        if len(indices) != count:
            raise self.error(f"{ref.kind} takes {count} node ind{'ex' if count == 1 else 'ices'}",
                             ref)
        node = Node(ref.kind, layer, *indices) if count else Node(ref.kind, layer, None)
        if ref.kind in KINDS and ref.kind not in _LAYER_KINDS | SHARED_KINDS and shape is None:
            problem = node_problem(node, self.graph.widths)
            if problem and shifted and len(indices) == count:
                raise OutsideMap  # letter arithmetic past a flat layer's ends: zero too
            if problem:
                raise self.error(problem, ref, hint=f"The network has layers 0..{self.graph.L} "
                                                    f"with widths {list(self.graph.widths)}")
        else:
            try:
                node = self.graph.resolve(node)  # a custom layer's r is its own kind
            except NameLookupError as exc:
                raise self.error(exc.what, ref, hint=exc.hint) from None
        if node.kind == "a" and node.layer == 0:
            return Node("x", None, *node.indices)
        return node

    def map_shape(self, kind: str, layer: int | None) -> tuple[int, ...] | None:
        """The shape of a map's nodes (x, a, z, delta of a conv or pooling layer) or of a
        conv weight, which number their indices per axis; None for a flat layer's."""
        spec = self.graph.spec
        if kind == "x" or (kind == "a" and layer == 0):
            shape = spec.shapes[0]
        elif layer is None or not 0 < layer <= self.graph.L:
            return None
        elif kind in ("a", "z", "delta"):
            shape = spec.shapes[layer]
        else:
            shape = next((q.shape for q in spec.layer(layer).parameters(spec.layers)
                          if q.kind == kind), ())
        return tuple(shape) if len(shape) > 1 and (kind != "w" or len(shape) > 2) else None

    def _node(self, ref: NodeRef, scope: Scope) -> sympy.Expr:
        try:
            return self.node(ref, scope).symbol
        except OutsideMap:
            return sympy.S.Zero

    # ------------------------------------------------------------ functions
    def _call(self, call: Call, scope: Scope) -> sympy.Expr:
        arg = self.lower(call.arg, scope)
        if call.name == "g" or (self.named_as_g and call.name in ("sigma", "tanh")):
            cls = self._activation(call, scope)
        else:
            cls = _NAMED[call.name]
        if call.primes:
            return cls.prime(arg)
        return cls(arg)

    def _activation(self, call: Call, scope: Scope) -> type:
        if call.layer is not None:
            layer = self.layer(call.layer, call, scope)
        elif isinstance(call.arg, NodeRef) and call.arg.kind == "z":
            layer = self.node(call.arg, scope).layer
        elif len(set(self.graph.activation.values())) == 1:
            layer = self.graph.L
        else:
            raise self.error("g has no layer, and the layers' activations differ", call,
                             hint="Write g^{(L)}(..) or g'^{(L-1)}(..)")
        if layer not in self.graph.activation:
            having = ", ".join(map(str, sorted(self.graph.activation))) or "none"
            raise self.error(f"layer {layer} has no activation g", call,
                             hint=f"The layers with one: {having}")
        cls = self.graph.activation[layer]
        if cls is Softmax:
            raise self.error(f"layer {layer} is a softmax, a function of the whole layer", call,
                             hint="Write its Jacobian with a: da_i/dz_m = a_i([i = m] - a_m), "
                                  "e.g. a_{1}^{(L)}(1 - a_{1}^{(L)})")
        return cls

    # ----------------------------------------------------------- derivatives
    def _deriv(self, d: Deriv, scope: Scope) -> sympy.Expr:
        wrt = self.node(d.wrt, scope)
        if wrt.kind in ("y", "delta"):
            raise self.error(f"C_0 is differentiated by parameters and nodes, not by "
                             f"{wrt.kind}", d.wrt, hint="Use w, b, z, a or x")
        if isinstance(d.of, Loss):
            return self._loss_gradient(d.of, wrt, scope)
        expr = self._node(d.of, scope) if d.of is not None else self.lower(d.operand, scope)
        return self.partial(expr, wrt)

    def partial(self, expr: sympy.Expr, wrt: Node) -> sympy.Expr:
        """d expr / d wrt through every quantity that depends on ``wrt``."""
        expr = self.engine.expand_deltas(expr)
        return sympy.diff(expr.xreplace(self.graph.composed_above(wrt)), wrt.symbol)

    def _loss_gradient(self, loss: Loss, wrt: Node, scope: Scope) -> sympy.Expr:
        if not (wrt.is_parameter or wrt.kind in ("a", "z", "x")):
            kind = self.graph.layers[wrt.layer].kind
            raise self.error(f"{wrt.kind} is an intermediate quantity of layer {wrt.layer} "
                             f"(a {kind}); C_0 is differentiated by parameters and nodes",
                             loss, hint="Write the derivative by a parameter or a node "
                                        "(a, z, x)")
        gradient = self.engine.gradient(wrt)
        if loss.sample is None:
            if not self.batch:  # index notation: C is C_0, the loss of one sample
                return gradient
            total = BatchSum(gradient)
            return total / BATCH_SIZE if self.graph.spec.reduction == "mean" else total
        if isinstance(loss.sample, int):
            if loss.sample >= self.batch_size:
                raise self.error(f"C_{loss.sample}: the check uses a batch of "
                                 f"{self.batch_size} samples", loss)
            if loss.sample == 0 and scope.sample is None:
                return gradient
            return AtSample(sympy.Integer(loss.sample), gradient)
        if loss.sample != scope.sample:
            raise self.error(f"C_{loss.sample} needs a sum over the samples "
                             f"\\sum_{{{loss.sample}=0}}^{{n-1}}", loss)
        return gradient

    # -------------------------------------------------------------- numbers
    def _size(self, expr: Size, scope: Scope) -> sympy.Expr:
        if scope.in_bounds:
            return _WIDTH
        return BATCH_SIZE if self.batch else sympy.Integer(self.graph.widths[-1])

    def _pow(self, p: Pow, scope: Scope) -> sympy.Expr:
        base, exponent = self.lower(p.base, scope), self.lower(p.exp, scope)
        if exponent.is_Number and abs(exponent) > MAX_EXPONENT:
            raise self.error(f"the exponent {exponent} is too large", p.exp)
        return base**exponent

    def _div(self, d: Div, scope: Scope) -> sympy.Expr:
        den = self.lower(d.den, scope)
        if den == 0:
            raise self.error("division by zero", d.den)
        return self.lower(d.num, scope) / den


#: The kinds whose nodes exist in some layers only (the graph decides, not the widths).
_LAYER_KINDS = frozenset({"gamma", "beta", "mu", "sigma", "r", "xhat", "w", "b", "z", "delta"})

#: The functions a formula names besides g (the spec's own activation of a layer).
_NAMED = {
    "sigma": activation_class("sigmoid"),
    "tanh": activation_class("tanh"),
    **{rule.text_name: activation_class(rule.name) for rule in ACTIVATIONS.values()
       if rule.text_name in ("id", "relu", "softplus", "elu", "swish")},
    "exp": sympy.exp,
    "log": sympy.log,
    "sqrt": sympy.sqrt,
    # what a custom formula may apply, so derive's own results read back
    "sinh": sympy.sinh, "cosh": sympy.cosh, "sin": sympy.sin, "cos": sympy.cos,
    "atan": sympy.atan, "erf": sympy.erf, "sign": sympy.sign, "abs": sympy.Abs,
}


def node_problem(node: Node, widths: tuple[int, ...]) -> str | None:
    """Why ``node`` does not exist in a network of ``widths``, or None."""
    L = len(widths) - 1
    has_layer = KINDS[node.kind][0]
    if has_layer:
        lowest = 0 if node.kind == "a" else 1
        if not lowest <= node.layer <= L:
            return (f"{node.text(L)} names layer {node.layer}; {node.kind} exists in layers "
                    f"{lowest}..{L}")
    for position, index in enumerate(node.indices):
        layer = node_layer(node.kind, node.layer, position, L)
        if not 0 <= index < widths[layer]:
            return (f"{node.text(L)} names node {index} of layer {layer}, which has "
                    f"{widths[layer]} node(s), numbered from 0")
    return None


def _loss_alone(meaning: Meaning, expr: Loss, scope: Scope):
    raise meaning.error("C_0 stands alone only inside a derivative, e.g. "
                        "\\frac{\\partial C_0}{\\partial w_{12}^{(L)}}", expr)


def _batch_only(meaning: Meaning, expr: Expr, scope: Scope):
    what = {Epsilon: "\\epsilon belongs to a batchnorm's formulas over a batch",
            Steps: "T alone is an rnn's number of steps (for a transpose write ^T or "
                   "^\\top), which belongs to an rnn's formulas through time",
            Kronecker: "a delta without a layer reads as a Kronecker delta (1 where its two "
                       "letters agree), which belongs to a batchnorm's formulas over a batch"}
    raise meaning.error(f"{what[type(expr)]}, and this network derives per sample", expr,
                        hint="Write the formula in the network's own names, as symprop "
                             "derive prints them" + (" (a node's delta with its layer: "
                             "\\delta_{1}^{(L)})" if isinstance(expr, Kronecker) else ""))


def _dots_alone(meaning: Meaning, expr: Dots, scope: Scope):
    raise meaning.error("cannot tell which terms \\cdots stands for", expr,
                        hint="Put \\cdots between two terms that differ only in node indices")


_LOWER = {
    Num: lambda m, e, s: sympy.Rational(e.text),
    Size: Meaning._size,
    Euler: lambda m, e, s: sympy.E,
    Pi: lambda m, e, s: sympy.pi,
    NodeRef: Meaning._node,
    Group: lambda m, e, s: m.lower(e.arg, s),
    Neg: lambda m, e, s: -m.lower(e.arg, s),
    Add: lambda m, e, s: sympy.Add(*[m.lower(t, s) for t in e.terms]),
    Mul: lambda m, e, s: sympy.Mul(*[m.lower(f, s) for f in e.factors]),
    Div: Meaning._div,
    Pow: Meaning._pow,
    Call: Meaning._call,
    Deriv: Meaning._deriv,
    Sum: Meaning._sum,
    Loss: _loss_alone,
    Dots: _dots_alone,
    Epsilon: _batch_only,
    Kronecker: _batch_only,
    Steps: _batch_only,
}
_LOWER.update(BRACKETS)
#: syntax type -> how it lowers (a subclass extends it: :mod:`.matrices`).
Meaning.TABLE = _LOWER
