"""Spec validation: every problem names the key and value, and says what is expected."""

import pytest

from symprop import ExpressionError, Spec, SpecError
from symprop.safe_parse import parse_expression


def load(text):
    return Spec.from_toml_string(text, "net.toml")


@pytest.mark.parametrize("text, fragment", [
    ('layers = [3]', "needs at least 2 layers"),
    ('layers = [3, 0, 2]', "width of layer 1 must be at least 1, got 0"),
    ('layers = [3, -2, 2]', "width of layer 1 must be at least 1, got -2"),
    ('layers = [3, 2.5, 2]', "must be a whole number"),
    ('layers = "3,4"', "expected a list of widths"),
    ('layers = [3, 4]\nactivation = "gelu"', "unknown activation 'gelu'"),
    ('layers = [3, 4, 2]\nactivation = ["tanh"]', "has 1 entries but the network has 2"),
    ('layers = [3, 4]\nbias = [true, false]', "has 2 entries but the network has 1"),
    ('layers = [3, 4]\nreduction = "median"', "unknown reduction 'median'"),
    ('layers = [3, 4]\nwidth = 3', "unknown key 'width'"),
    ('activation = "g"', "missing key 'layers'"),
    ('layers = [3, 4]\nloss = "hinge"', "unknown loss 'hinge'"),
    ('layers = [3, 4]\nactivation = "tanh"\nloss = "cross_entropy"', "does not give probabilities"),
    ('layers = [3, 4, 2]\nactivation = ["softmax", "sigmoid"]', "only supported on the output"),
    ('layers = [3, 4]\nactivation = "leaky_relu(a)"', "must be numbers"),
    ('layers = [3, 4]\nactivation = "tanh(2)"', "takes no parameters"),
    ('layers = [3, 4\n', "not valid TOML"),
    ('layers = [3, 1]\nactivation = "softmax"', "single output node is the constant 1"),
    ('layers = [3, 4]\nactivation = "f"\n[activations]\nf = "y + 1"', "unknown name 'y'"),
    ('layers = [3, 4]\n[activations]\ntanh = "x"', "is a built-in activation"),
])
def test_bad_specs_name_the_problem(text, fragment):
    with pytest.raises(SpecError if "name 'y'" not in fragment else ExpressionError) as info:
        load(text)
    assert fragment in info.value.message
    assert "net.toml" in info.value.message


def test_valid_spec_with_everything():
    spec = load('name = "n"\nlayers = [3, 4, 2]\nactivation = ["leaky_relu(0.2)", "softmax"]\n'
                'loss = "cross_entropy"\nbias = [true, false]\nreduction = "sum"\n')
    assert spec.L == 2 and spec.has_bias(1) and not spec.has_bias(2)
    assert spec.activation_of(1).params == (0.2,)
    assert spec.n_parameters == 3 * 4 + 4 + 4 * 2


@pytest.mark.parametrize("text, fragment", [
    ("__import__('os').system('echo hi')", "not allowed"),
    ("x.__class__", "Attribute"),
    ("(lambda: 1)()", "only plain function names"),
    ("x[0]", "Subscript"),
    ("eval('1')", "unknown function 'eval'"),
    ("x^2", "x**2"),
    ("10**10**10", "exponent"),
    ("x" + "+x" * 2000, "characters long"),
    ("(" * 100 + "x" + ")" * 100, "nests brackets"),
    ("'x'", "not a number"),
    ("x if x else 1", "IfExp"),
    ("tanh(x, y=1)", "keyword"),
    ("x +", "cannot parse"),
])
def test_hostile_or_broken_expressions_are_rejected(text, fragment):
    import sympy

    with pytest.raises(ExpressionError) as info:
        parse_expression(text, {"x": sympy.Symbol("x")})
    assert fragment in info.value.message


def test_parse_error_points_at_the_position():
    import sympy

    with pytest.raises(ExpressionError) as info:
        parse_expression("x + foo(x)", {"x": sympy.Symbol("x")})
    assert info.value.message.endswith("x + foo(x)\n        ^")
