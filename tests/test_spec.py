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


# ------------------------------------------------------------- a list of layers (3b)
def layer_spec(*tables, head='input = 4\nloss = "sse"\n'):
    return head + "".join("\n[[layer]]\n" + t + "\n" for t in tables)


DENSE8 = 'kind = "dense"\nwidth = 8\nactivation = "tanh"'


def test_a_list_of_layers_and_its_3a_twin_are_the_same_spec():
    twin = load(layer_spec('kind = "dense"\nwidth = 6\nactivation = "g"',
                           'kind = "dense"\nwidth = 6\nactivation = "g"',
                           'kind = "dense"\nwidth = 4\nactivation = "g"',
                           head="input = 3\nloss = \"sse\"\n"))
    stack = load('layers = [3, 6, 6, 4]\nactivation = "g"\nloss = "sse"')
    assert twin == stack and hash(twin) == hash(stack) and twin.is_dense
    assert twin.to_dict() == stack.to_dict() and "layers" in twin.to_dict()


def test_every_kind_reads_its_keys_and_works_out_its_width():
    spec = load(layer_spec(DENSE8, 'kind = "layernorm"\neps = 1e-3', 'kind = "add"\nfrom = 1',
                           'kind = "multiply"\nfrom = "L-7"', 'kind = "rmsnorm"',
                           'kind = "concat"\nfrom = 0', 'kind = "activation"\nactivation = "sigmoid"',
                           'kind = "custom"\nwidth = 5\nformula = "exp(-s_j * sum_k((a_k - c_jk)**2))"'
                           '\nparams = { c = "jk", s = "j" }\ninit = { s = 1.0 }',
                           'kind = "dense"\nwidth = 3'))
    assert spec.layers == (4, 8, 8, 8, 8, 8, 12, 12, 5, 3) and spec.L == 9
    assert [c.kind for c in spec.stack] == ["dense", "layernorm", "add", "multiply", "rmsnorm",
                                            "concat", "activation", "custom", "dense"]
    assert spec.layer(3).source == 1 and spec.layer(4).source == 2 and spec.layer(2).eps == 1e-3
    keys = [f"{p.key}{l}" for l, p in spec.parameters()]
    assert keys == ["W1", "gamma2", "beta2", "gamma5", "c8", "s8", "W9"]
    assert {f"{p.key}{l}": p.shape for l, p in spec.parameters()}["c8"] == (5, 12)
    assert spec.n_parameters == 4 * 8 + 8 + 8 + 8 + 5 * 12 + 5 + 5 * 3
    assert Spec.from_dict(spec.to_dict()) == spec


@pytest.mark.parametrize("tables, fragment", [
    (['kind = "pool"'], "layer 1, key 'kind': unknown kind 'pool'"),
    (['width = 3'], "layer 1: missing key 'kind'"),
    ([DENSE8, 'kind = "add"'], "layer 2 (add): missing key 'from'"),
    ([DENSE8, 'kind = "add"\nfrom = 2'], "layer 2 (add), key 'from': layer 2 is not an earlier"),
    ([DENSE8, 'kind = "add"\nfrom = 0'], ("add needs equal widths, but layer 1 has 8 node(s) "
                                         "and layer 0 has 4")),
    ([DENSE8, 'kind = "add"\nfrom = "L-9"'], "layer -7 is not an earlier layer"),
    ([DENSE8, 'kind = "multiply"\nfrom = "one"'], "cannot read the layer 'one'"),
    (['kind = "dense"\nwidth = 0'], "layer 1 (dense), key 'width': must be from 1 to"),
    (['kind = "dense"\nwidth = 3\nbias = "yes"'], "key 'bias': expected true or false"),
    (['kind = "dense"\nwidth = 3\nstride = 2'], "unknown key 'stride' for a dense layer"),
    ([DENSE8, 'kind = "layernorm"\neps = -1'], "key 'eps': expected a positive number"),
    ([DENSE8, 'kind = "layernorm"\naffine = 1'], "key 'affine': expected true or false"),
    (['kind = "activation"'], "layer 1 (activation): missing key 'activation'"),
    (['kind = "activation"\nactivation = "gelu"'], "unknown activation 'gelu'"),
    (['kind = "dense"\nwidth = 3\nactivation = "softmax"', DENSE8],
     "softmax is only supported on the output layer, not layer 1"),
    (['kind = "custom"\nwidth = 2\nformula = "sum_k(c_jm * a_k)"\nparams = { c = "jk" }'],
     "layer 1 (custom), key 'formula': unknown name 'c_jm'"),
    (['kind = "custom"\nwidth = 2\nformula = "c_jk * a_k"\nparams = { c = "jk" }'],
     "appears outside sum_k"),
    (['kind = "custom"\nwidth = 2\nformula = "a_j + s_j"\nparams = { s = "j" }'],
     "a_j is node j of layer 0, which has 4 node(s) while this layer has 2"),
    (['kind = "custom"\nwidth = 2\nformula = "sum_k(a_k)"\nparams = { w = "jk" }'],
     "'w' cannot be a parameter's name"),
    (['kind = "custom"\nwidth = 2\nformula = "sum_k(a_k)"\nparams = { c = "ij" }'],
     "parameter 'c' has index letters 'ij'"),
    (['kind = "custom"\nwidth = 2\nformula = "sum_k(a_k)"\nparams = { c = "j" }'],
     "the parameter 'c' is declared but the formula does not use it"),
    (['kind = "custom"\nwidth = 2\nformula = "s_j"\nparams = { s = "j" }'],
     "does not read layer 0"),
    (['kind = "custom"\nwidth = 2\nformula = "sum_k(a_k)"\ninit = { c = 1.0 }'],
     "key 'init': 'c' is not a declared parameter"),
    (['kind = "custom"\nwidth = 2\nformula = "__import__(\'os\').system(\'ls\')"'],
     "key 'formula'"),
    (['kind = "custom"\nwidth = 2\nformula = "sum_k(sum_k(a_k))"'], "sum_k(...) inside sum_k"),
    ([DENSE8, 'kind = "layernorm"'], ("the loss 'cross_entropy' takes log(a), but the output "
                                     "layer is a layernorm layer")),
])
def test_bad_layer_lists_name_the_layer_and_the_key(tables, fragment):
    head = 'input = 4\nloss = "cross_entropy"\n' if "log(a)" in fragment else None
    text = layer_spec(*tables) if head is None else layer_spec(*tables, head=head)
    with pytest.raises((SpecError, ExpressionError)) as info:
        load(text)
    assert fragment in info.value.message, info.value.message
    assert "net.toml" in info.value.message


@pytest.mark.parametrize("text, fragment", [
    ('layers = [3, 4]\ninput = 3\n[[layer]]\nkind = "dense"\nwidth = 2', "not both"),
    ('layers = [3, 4]\ninput = 3', ("key 'input': input = n belongs to a spec of [[layer]] "
     "tables; in layers = [...] the first entry is the input's width. Remove input, or write "
     "layers = [3, ...]")),
    ('input = 3\nloss = "sse"', "missing key 'layer'"),
    ('[[layer]]\nkind = "dense"\nwidth = 2', "missing key 'input'"),
    ('input = [3, 8]\n[[layer]]\nkind = "dense"\nwidth = 2', "a dense layer reads a flat layer, but the input is a map of shape [3, 8]"),
    ('input = 3\nactivation = "tanh"\n[[layer]]\nkind = "dense"\nwidth = 2',
     "unknown key 'activation' in a spec of [[layer]] tables"),
    ('input = 3\nlayer = 5', "expected one or more [[layer]] tables"),
])
def test_bad_layer_list_specs(text, fragment):
    with pytest.raises(SpecError) as info:
        load(text)
    assert fragment in info.value.message, info.value.message
