"""Grade the write-it-yourself exercises with the package's own checks.

    python tutorial/exercises/check.py mlp_backward        # one exercise
    python tutorial/exercises/check.py all                 # all five
    python tutorial/exercises/check.py all --reference     # grade cc_numpy's own code instead (passes)

Each exercise prints ONE line: ``PASS`` with the numbers that passed, or
``FAIL`` with what is wrong (which tensor, its relative error, the step or
iteration where it went wrong, or that the file is still a stub). The exit
status is 0 when every graded exercise passes, 1 otherwise.

What is checked (all in float64):

* mlp_backward, residual_backward, small_p_grad: the returned gradients against
  centred finite differences (``cc_numpy.core.gradcheck.check_gradients``) of
  the package's own forward pass and loss, at a point with no ReLU input near
  0; every relative error must be below 1e-7.
* adamw_step: five steps with a cosine learning rate against a reference
  AdamW trajectory written from the formulas (θ, m and v after every step,
  relative error below 1e-10).
* snmf_update_G: 60 alternations of the package's F step with your G step:
  G stays ≥ 0 and J = ‖X − F Gᵀ‖²_F never increases at a G step; then one step
  agrees with the Ding–Li–Jordan update (relative error below 1e-10).

``--reference`` grades the package's implementation through the same checks
(``tests/test_exercises.py`` runs it, so the exercises cannot rot);
``--exercises DIR`` grades the files in DIR instead of tutorial/exercises/.
"""

import argparse
import importlib.util
import math
import os
import sys
import traceback

sys.dont_write_bytecode = True          # no __pycache__ next to the student's files

import numpy as np  # noqa: E402

from cc_numpy.analyses import small_p, snmf  # noqa: E402
from cc_numpy.core import gradcheck, loss, mlp, optim, residual  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
GRADIENT_TOLERANCE = 1e-7               # relative error against centred differences
EXACT_TOLERANCE = 1e-10                 # relative error against a formula evaluated in float64


class Fail(Exception):
    """A failed check; its message is the one line the student sees."""


# ----------------------------------------------------------------------------- helpers

def away_from_kinks(make, margin=1e-3, tries=100):
    """Call make(seed) for seeds 0, 1, … until every ReLU input it reports is at least ``margin`` from 0."""
    for seed in range(tries):
        case, relu_inputs = make(seed)
        if np.min(np.abs(relu_inputs)) > margin:
            return case
    raise RuntimeError("no sample point away from the ReLU kinks found")   # not the student's fault


def as_pair(result, names):
    """The student's return value as two float64 arrays, or a Fail naming what came back."""
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        raise Fail(f"return the pair ({names[0]}, {names[1]}); got {type(result).__name__}"
                   + (f" of length {len(result)}" if isinstance(result, (tuple, list)) else ""))
    return tuple(np.asarray(r, dtype=np.float64) for r in result)


def check_shapes(arrays, expected):
    for name, array in arrays.items():
        if array.shape != expected[name]:
            raise Fail(f"{name} has shape {array.shape}; it must have shape {expected[name]}")
        if not np.all(np.isfinite(array)):
            raise Fail(f"{name} has non-finite entries (nan or inf)")


def gradient_check(f, params, analytic, names):
    """Relative error of each analytic gradient against centred differences; Fail on the worst."""
    errors = gradcheck.check_gradients(f, params, {key: analytic[name] for key, name in names.items()},
                                       np.random.default_rng(0), max_entries=200, h=1e-6)
    for key, name in names.items():
        if not errors[key] < GRADIENT_TOLERANCE:
            hint = " (order 1: a term missing, the wrong sign, a transpose or the ReLU mask)" \
                if errors[key] > 1e-2 else ""
            raise Fail(f"{name}: relative error {errors[key]:.1e} against centred finite differences "
                       f"(needs < {GRADIENT_TOLERANCE:.0e}){hint}")
    return ", ".join(f"{name} {errors[key]:.1e}" for key, name in names.items())


def relative_difference(a, b):
    """max |a − b| / max(|b|, tiny), elementwise."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-300)))


# ----------------------------------------------------------------------------- 1. the MLP backward pass

def grade_mlp_backward(student):
    n, d_mlp, B = 6, 4, 5

    def make(seed):
        rng = np.random.default_rng(seed)
        x = rng.uniform(-1, 1, (B, n))
        params = mlp.init_params(n, d_mlp, rng)
        return (x, params), x @ params["W_in"].T

    x, params = away_from_kinks(make)
    y = np.maximum(x, 0) + 0.3 * x                                   # any labels will do
    h = x @ params["W_in"].T                                         # (B, d_mlp)
    a = np.maximum(h, 0)
    y_hat, _ = mlp.forward(params, x)
    _, d_y_hat = loss.mse_loss(y_hat, y)                             # ∂L/∂ŷ at this point

    result = student(params["W_in"].copy(), params["W_out"].copy(), x.copy(), h.copy(), a.copy(), d_y_hat.copy())
    d_W_in, d_W_out = as_pair(result, ("d_W_in", "d_W_out"))
    check_shapes({"d_W_in": d_W_in, "d_W_out": d_W_out},
                 {"d_W_in": params["W_in"].shape, "d_W_out": params["W_out"].shape})

    def f():
        return loss.mse_loss(mlp.forward(params, x)[0], y)[0]

    return gradient_check(f, params, {"d_W_in": d_W_in, "d_W_out": d_W_out},
                          {"W_in": "d_W_in", "W_out": "d_W_out"})


def reference_mlp_backward(W_in, W_out, x, h, a, d_y_hat):
    params = {"W_in": W_in, "W_out": W_out}
    _, cache = mlp.forward(params, x)
    grads = mlp.backward(params, cache, d_y_hat)
    return grads["W_in"], grads["W_out"]


# ----------------------------------------------------------------------------- 2. the residual model, literally

def grade_residual_backward(student):
    n, d, d_mlp, B = 6, 16, 4, 5

    def make(seed):
        rng = np.random.default_rng(100 + seed)
        x = rng.uniform(-1, 1, (B, n))
        params = residual.init_params(n, d, d_mlp, rng, rng)
        return (x, params), (x @ params["W_E"].T) @ params["W_in"].T

    x, params = away_from_kinks(make)
    y = x + np.maximum(x, 0)                                         # the residual task's labels
    r = x @ params["W_E"].T                                          # (B, d)
    h = r @ params["W_in"].T                                         # (B, d_mlp)
    a = np.maximum(h, 0)
    y_hat, _ = residual.forward_literal(params, x)
    _, d_y_hat = loss.mse_loss(y_hat, y)

    result = student(params["W_E"].copy(), params["W_in"].copy(), params["W_out"].copy(),
                     r.copy(), h.copy(), a.copy(), d_y_hat.copy())
    d_W_in, d_W_out = as_pair(result, ("d_W_in", "d_W_out"))
    check_shapes({"d_W_in": d_W_in, "d_W_out": d_W_out},
                 {"d_W_in": params["W_in"].shape, "d_W_out": params["W_out"].shape})

    def f():
        return loss.mse_loss(residual.forward_literal(params, x)[0], y)[0]

    return gradient_check(f, params, {"d_W_in": d_W_in, "d_W_out": d_W_out},
                          {"W_in": "d_W_in", "W_out": "d_W_out"})


def reference_residual_backward(W_E, W_in, W_out, r, h, a, d_y_hat):
    params = {"W_E": W_E, "W_in": W_in, "W_out": W_out}
    x = np.linalg.lstsq(W_E, r.T, rcond=None)[0].T                  # r = x W_Eᵀ, W_E has full column rank
    _, cache = residual.forward_literal(params, x)
    grads = residual.backward_literal(params, cache, d_y_hat)
    return grads["W_in"], grads["W_out"]


# ----------------------------------------------------------------------------- 3. one AdamW step

ADAMW_SETTINGS = {"lr": 0.05, "weight_decay": 0.1, "beta1": 0.8, "beta2": 0.95, "eps": 1e-3, "steps": 5}


def adamw_reference_trajectory(theta0, grads, lrs, weight_decay, beta1, beta2, eps):
    """torch.optim.AdamW, one scalar at a time in plain Python floats: [(θ, m, v) after each step] per scalar."""
    trajectories = []
    for i in range(theta0.size):
        theta, m, v, steps = float(theta0[i]), 0.0, 0.0, []
        for t, (g, lr_t) in enumerate(zip((float(g[i]) for g in grads), lrs), start=1):
            theta *= 1.0 - lr_t * weight_decay
            m = beta1 * m + (1.0 - beta1) * g
            v = beta2 * v + (1.0 - beta2) * g * g
            theta -= lr_t * (m / (1.0 - beta1 ** t)) / (math.sqrt(v / (1.0 - beta2 ** t)) + eps)
            steps.append((theta, m, v))
        trajectories.append(steps)
    return trajectories


def grade_adamw_step(student):
    s = ADAMW_SETTINGS
    theta0 = np.array([0.5, -1.2, 2.0, 0.0, 0.03])
    rng = np.random.default_rng(5)
    # gradients of very different sizes, some near ε, so ε's place matters
    grads = [rng.standard_normal(theta0.size) * np.array([0.3, 0.002, 1.5, 5e-4, 0.05]) for _ in range(s["steps"])]
    T = s["steps"]
    lrs = [s["lr"] * 0.5 * (1.0 + math.cos(math.pi * t / T)) for t in range(T)]     # cosine schedule
    expected = adamw_reference_trajectory(theta0, grads, lrs, s["weight_decay"], s["beta1"], s["beta2"], s["eps"])
    theta, m, v = theta0.copy(), np.zeros_like(theta0), np.zeros_like(theta0)
    worst = 0.0
    for t in range(1, T + 1):
        result = student(theta.copy(), grads[t - 1].copy(), m.copy(), v.copy(), t, lrs[t - 1],
                         s["weight_decay"], s["beta1"], s["beta2"], s["eps"])
        if not isinstance(result, (tuple, list)) or len(result) != 3:
            raise Fail(f"return the triple (theta, m, v); got {type(result).__name__}")
        theta, m, v = (np.array(r, dtype=np.float64) for r in result)
        for name, got in (("theta", theta), ("m", m), ("v", v)):
            if got.shape != theta0.shape:
                raise Fail(f"step {t}: {name} has shape {got.shape}; it must have shape {theta0.shape}")
        # the first of m, v, θ that is off points at the wrong line
        for position, name in ((1, "m"), (2, "v"), (0, "theta")):
            want = np.array([expected[i][t - 1][position] for i in range(theta0.size)])
            got = {"theta": theta, "m": m, "v": v}[name]
            error = relative_difference(got, want)
            worst = max(worst, error)
            if not error < EXACT_TOLERANCE:
                hints = {"m": "the first-moment update", "v": "the second-moment update (g², not g)",
                         "theta": "the decay (first, θ·(1 − lr_t λ)), the bias corrections (β^t, t from 1) "
                                  "or ε (added to √v̂, after the bias correction)"}
                raise Fail(f"step {t} of {T}: {name} differs from the reference AdamW trajectory by relative "
                           f"error {error:.1e} (needs < {EXACT_TOLERANCE:.0e}); check {hints[name]}")
    return f"θ, m, v match the reference trajectory for {T} steps (worst relative error {worst:.1e})"


def reference_adamw_step(theta, g, m, v, t, lr_t, weight_decay, beta1, beta2, eps):
    params = {"theta": np.array(theta, dtype=np.float64)}
    state = optim.adamw_init(params, ["theta"], lr=lr_t, weight_decay=weight_decay, betas=(beta1, beta2), eps=eps)
    state["step"] = t - 1                                            # steps already taken
    state["m"]["theta"][...] = m
    state["v"]["theta"][...] = v
    optim.adamw_step(params, {"theta": np.asarray(g, dtype=np.float64)}, state, lr_t)
    return params["theta"], state["m"]["theta"], state["v"]["theta"]


# ----------------------------------------------------------------------------- 4. the semi-NMF G step

def grade_snmf_update_G(student):
    m_rows, k_cols, r, iterations = 12, 10, 4, 60
    rng = np.random.default_rng(7)
    X = rng.standard_normal((m_rows, k_cols))                        # any sign
    X[:k_cols] += 2 * np.eye(k_cols)                                 # like I + σM
    G = snmf.init_G(X, r, rng)                                       # (k_cols, r), all > 0
    F = snmf.update_F(X, G)
    start = snmf.snmf_objective(X, F, G)
    for iteration in range(1, iterations + 1):
        before = snmf.snmf_objective(X, F, G)
        G_new = np.array(student(X.copy(), F.copy(), G.copy()), dtype=np.float64)
        if G_new.shape != G.shape:
            raise Fail(f"iteration {iteration}: G_new has shape {G_new.shape}; it must have G's shape {G.shape}")
        if not np.all(np.isfinite(G_new)):
            raise Fail(f"iteration {iteration}: G_new has non-finite entries (nan or inf)")
        if G_new.min() < 0:
            raise Fail(f"iteration {iteration}: G_new has a negative entry ({G_new.min():.3g}); "
                       "a multiplicative update of G ≥ 0 by a non-negative factor stays ≥ 0")
        after = snmf.snmf_objective(X, F, G_new)
        if after > before * (1 + 1e-12) + 1e-300:
            raise Fail(f"iteration {iteration}: the G step increased J = ‖X − F Gᵀ‖²_F from {before:.6g} to "
                       f"{after:.6g}; is the ratio upside down (numerator: what pushes G up)?")
        G = G_new
        F = snmf.update_F(X, G)
    end = snmf.snmf_objective(X, F, G)
    # one step against the Ding–Li–Jordan update: a G step that does nothing also never increases J
    G_probe = snmf.init_G(X, r, np.random.default_rng(8))
    F_probe = snmf.update_F(X, G_probe)
    want = snmf.update_G(X, F_probe, G_probe)
    got = np.array(student(X.copy(), F_probe.copy(), G_probe.copy()), dtype=np.float64)
    error = float(np.linalg.norm(got - want) / np.linalg.norm(want))
    if not error < EXACT_TOLERANCE:
        raise Fail(f"G ≥ 0 and J never increased, but one step differs from the Ding–Li–Jordan update "
                   f"G ⊙ sqrt(N / D) by relative error {error:.1e} (needs < {EXACT_TOLERANCE:.0e}); "
                   "check the square root and which parts go in N and D")
    return (f"G ≥ 0 and J never increased over {iterations} iterations ({start:.4g} -> {end:.4g}); "
            f"one step matches Ding–Li–Jordan to {error:.1e}")


def reference_snmf_update_G(X, F, G):
    return snmf.update_G(X, F, G)


# ----------------------------------------------------------------------------- 5. the small-p gradient

def grade_small_p_grad(student):
    n, d_mlp, sigma = 8, 4, 0.3
    rng = np.random.default_rng(11)
    W_in = rng.choice([-1.0, 1.0], (d_mlp, n)) * rng.uniform(0.05, 1.0, (d_mlp, n))   # no entry near the kink at 0
    W_out = rng.standard_normal((n, d_mlp)) * 0.5
    M = rng.standard_normal((n, n))
    params = {"W_in": W_in, "W_out": W_out}

    result = student(W_in.copy(), W_out.copy(), M.copy(), sigma)
    d_W_in, d_W_out = as_pair(result, ("d_W_in", "d_W_out"))
    check_shapes({"d_W_in": d_W_in, "d_W_out": d_W_out}, {"d_W_in": W_in.shape, "d_W_out": W_out.shape})

    def f():
        return small_p.small_p_loss(params["W_in"], params["W_out"], M, sigma)

    return gradient_check(f, params, {"d_W_in": d_W_in, "d_W_out": d_W_out},
                          {"W_in": "d_W_in", "W_out": "d_W_out"})


def reference_small_p_grad(W_in, W_out, M, sigma):
    _, grads = small_p.small_p_loss_and_grad(W_in, W_out, M, sigma)
    return grads["W_in"], grads["W_out"]


# ----------------------------------------------------------------------------- the command

EXERCISES = {   # name: (function in NAME.py, grader, the package's implementation)
    "mlp_backward": ("mlp_backward", grade_mlp_backward, reference_mlp_backward),
    "residual_backward": ("residual_backward_literal", grade_residual_backward, reference_residual_backward),
    "adamw_step": ("adamw_step", grade_adamw_step, reference_adamw_step),
    "snmf_update_G": ("update_G", grade_snmf_update_G, reference_snmf_update_G),
    "small_p_grad": ("small_p_grad", grade_small_p_grad, reference_small_p_grad),
}


def load_student(name, folder=HERE):
    """The student's function from folder/NAME.py."""
    path = os.path.join(folder, name + ".py")
    spec = importlib.util.spec_from_file_location(f"exercise_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, EXERCISES[name][0])


def where_it_failed(error):
    """'file.py:line' of the innermost frame outside this checker, for an exception."""
    frames = [f for f in traceback.extract_tb(error.__traceback__) if os.path.abspath(f.filename) != os.path.abspath(__file__)]
    return f" ({os.path.basename(frames[-1].filename)}:{frames[-1].lineno})" if frames else ""


def grade(name, function=None, folder=HERE):
    """(passed, one-line message) for exercise ``name``, grading ``function`` (default: the student's file)."""
    display = os.path.relpath(os.path.join(folder, name + ".py"))
    try:
        if function is None:
            function = load_student(name, folder)
        return True, EXERCISES[name][1](function)
    except Fail as failure:
        return False, str(failure)
    except NotImplementedError as error:
        if str(error).startswith("write me"):
            return False, f"still a stub: fill in {display}"
        return False, f"raised NotImplementedError: {error}{where_it_failed(error)}"
    except Exception as error:                                      # the student's code crashed
        first_line = (str(error).splitlines() or [""])[0]
        return False, f"your code raised {type(error).__name__}: {first_line}{where_it_failed(error)}"


def main(argv=None):
    parser = argparse.ArgumentParser(description="Grade the write-it-yourself exercises (tutorial/exercises/).")
    parser.add_argument("exercise", choices=sorted(EXERCISES) + ["all"], help="which exercise, or all")
    parser.add_argument("--reference", action="store_true",
                        help="grade cc_numpy's own implementation instead of your file (it passes)")
    parser.add_argument("--exercises", default=HERE, metavar="DIR", help="folder holding your NAME.py files")
    args = parser.parse_args(argv)
    names = sorted(EXERCISES) if args.exercise == "all" else [args.exercise]
    failed = 0
    for name in names:
        function = EXERCISES[name][2] if args.reference else None
        passed, message = grade(name, function, args.exercises)
        failed += not passed
        print(f"{name}: {'PASS' if passed else 'FAIL'}{' (reference)' if args.reference else ''}: {message}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
