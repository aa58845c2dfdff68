"""Train a symprop-generated network with plain SGD on scikit-learn's bundled digits.

The gradient code is generated from examples/digits.toml (matrix form, NumPy only), or from
any spec given with --spec: examples/lenet.toml is a LeNet-style convolutional network that
reads each digit as an image (1, 8, 8), examples/digits_rnn.toml an rnn that reads it row
by row, 8 time steps of 8 pixels; nothing here differentiates by hand.  The digits
(1,797 8x8 images) ship inside scikit-learn, so no download is needed.

    pip install 'symprop[examples]'
    python examples/train_digits.py [--spec examples/lenet.toml] [--epochs 30] [--lr 0.1]
                                    [--batch 32] [--seed 0]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from symprop import Spec
from symprop.codegen import generate

HERE = Path(__file__).resolve().parent


def load_data(seed: int, shape: tuple[int, ...] = (64,)):
    """Train and test splits, each sample of ``shape``: 64 pixels, the image (1, 8, 8), or
    its 8 rows as time steps (8, 8)."""
    try:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split
    except ImportError:
        sys.exit("this example needs scikit-learn: pip install 'symprop[examples]'")
    digits = load_digits()
    X = (digits.data / 16.0).reshape(-1, *shape)   # pixels 0..16 -> 0..1
    Y = np.eye(10)[digits.target]                   # one-hot targets y_j
    return train_test_split(X, Y, test_size=0.25, random_state=seed, stratify=digits.target)


def progress(iterable, **options):
    try:
        from tqdm import tqdm
    except ImportError:
        return iterable
    return tqdm(iterable, **options)


def accuracy(net, params, X, Y) -> float:
    return float(np.mean(net.forward(params, X).argmax(axis=1) == Y.argmax(axis=1)))


def main(argv=None) -> float:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", type=Path, default=HERE / "digits.toml",
                        help="the network (default examples/digits.toml)")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--module", type=Path, help="where to write the generated module")
    args = parser.parse_args(argv)

    spec = Spec.from_toml(args.spec)
    path = args.module or Path(tempfile.mkdtemp(prefix="symprop-digits-")) / "digits_net.py"
    net = generate(spec, "vectorized").load(path)
    print(f"generated {path} from {spec.source}: layers {list(spec.layers)}, "
          f"{spec.n_parameters} parameters")

    X_train, X_test, Y_train, Y_test = load_data(args.seed, spec.input_shape)
    rng = np.random.default_rng(args.seed)
    started = time.perf_counter()
    params = net.init_params(args.seed)
    bar = progress(range(args.epochs), desc="SGD", unit="epoch", file=sys.stderr,
                   disable=None)  # hidden when stderr is not a terminal
    for _ in bar:
        order = rng.permutation(len(X_train))
        losses = []
        for start in range(0, len(order), args.batch):
            rows = order[start:start + args.batch]
            loss, grads = net.loss_and_gradients(params, X_train[rows], Y_train[rows])
            for key, g in grads.items():
                params[key] -= args.lr * g          # plain SGD: w <- w - lr dC/dw
            losses.append(loss)
        if hasattr(bar, "set_postfix"):
            bar.set_postfix(loss=f"{np.mean(losses):.4f}")
    train_acc = accuracy(net, params, X_train, Y_train)
    test_acc = accuracy(net, params, X_test, Y_test)
    print(f"train accuracy {train_acc:.4f}, test accuracy {test_acc:.4f} "
          f"({len(X_test)} held-out digits; {time.perf_counter() - started:.1f} s of training)")
    return test_acc


if __name__ == "__main__":
    main()
