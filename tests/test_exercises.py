"""Keeps the write-it-yourself exercises in tutorial/exercises/ from rotting.

1. ``check.py all --reference`` grades the package's own implementations through
   the exercises' checks and passes (so a renamed or changed package function
   shows up here, not in a student's hands).
2. An unfilled stub fails with the one-line "still a stub" message and exit status 1.
3. A deliberately wrong implementation of each exercise (a transposed term, a
   missing ReLU mask, ε in the wrong place, the G-step ratio upside down, a
   wrong sign) is caught, with a message naming what is wrong.
"""

import importlib.util
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
EXERCISES = ROOT / "tutorial" / "exercises"
CHECK = EXERCISES / "check.py"
NAMES = ("adamw_step", "mlp_backward", "residual_backward", "small_p_grad", "snmf_update_G")
ENV = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")


def load_checker():
    spec = importlib.util.spec_from_file_location("exercise_checker", CHECK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


checker = load_checker()


def run_check(*args):
    return subprocess.run([sys.executable, str(CHECK), *args], cwd=ROOT, env=ENV,
                          capture_output=True, text=True, timeout=120)


def test_every_exercise_has_a_stub_and_a_check():
    assert sorted(checker.EXERCISES) == sorted(NAMES)
    for name in NAMES:
        assert (EXERCISES / f"{name}.py").is_file(), f"tutorial/exercises/{name}.py is missing"


# ----------------------------------------------------------------------------- 1. reference mode passes

def test_reference_mode_passes_every_exercise():
    completed = run_check("all", "--reference")
    lines = completed.stdout.strip().splitlines()
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert len(lines) == len(NAMES), lines
    assert all(": PASS (reference): " in line for line in lines), lines


@pytest.mark.parametrize("name", NAMES)
def test_reference_implementation_passes(name):
    passed, message = checker.grade(name, checker.EXERCISES[name][2])
    assert passed, f"{name}: the package's own implementation fails its exercise's check: {message}"


# ----------------------------------------------------------------------------- 2. an unfilled stub fails clearly

def test_unfilled_stubs_fail_with_a_clear_message(tmp_path):
    for name in NAMES:
        text = (EXERCISES / f"{name}.py").read_text(encoding="utf-8")
        shutil.copy(EXERCISES / f"{name}.py", tmp_path / f"{name}.py")
        if 'raise NotImplementedError("write me' not in text:        # a student filled it in: make a stub
            stub = re.sub(r"(\n    \"\"\"\n)(.*)\Z",
                          r'\1    raise NotImplementedError("write me")\n', text, flags=re.S)
            (tmp_path / f"{name}.py").write_text(stub, encoding="utf-8")
    completed = run_check("all", "--exercises", str(tmp_path))
    assert completed.returncode == 1
    lines = completed.stdout.strip().splitlines()
    assert len(lines) == len(NAMES), lines
    for name, line in zip(NAMES, lines):
        assert line.startswith(f"{name}: FAIL: still a stub: fill in ") and line.endswith(f"{name}.py"), line


def test_the_committed_stubs_document_every_array():
    for name in NAMES:
        text = (EXERCISES / f"{name}.py").read_text(encoding="utf-8")
        assert "Parameters" in text and "Returns" in text and f"check.py {name}" in text, name


def test_a_crash_is_reported_in_one_line():
    def crashes(W_in, W_out, x, h, a, d_y_hat):
        return W_in @ x, W_out                                  # (d_mlp, n) @ (B, n): shapes do not fit

    passed, message = checker.grade("mlp_backward", crashes)
    assert not passed and "ValueError" in message and "\n" not in message, message


# ----------------------------------------------------------------------------- 3. wrong implementations are caught

def mlp_backward_without_relu_mask(W_in, W_out, x, h, a, d_y_hat):
    d_a = d_y_hat @ W_out
    return d_a.T @ x, d_y_hat.T @ a                             # ∂L/∂h taken as ∂L/∂a: no 1[h > 0]


def mlp_backward_wrong_shape(W_in, W_out, x, h, a, d_y_hat):
    d_h = (d_y_hat @ W_out) * (h > 0)
    return x.T @ d_h, d_y_hat.T @ a                             # ∂L/∂W_in transposed: (n, d_mlp)


def residual_backward_with_h_for_a(W_E, W_in, W_out, r, h, a, d_y_hat):
    d_r_out = d_y_hat @ W_E.T
    d_h = (d_r_out @ W_out) * (h > 0)
    return d_h.T @ r, d_r_out.T @ h                             # pre-activation h where a belongs


def adamw_eps_inside_bias_correction(theta, g, m, v, t, lr_t, weight_decay, beta1, beta2, eps):
    theta = theta * (1 - lr_t * weight_decay)
    m = beta1 * m + (1 - beta1) * g
    v = beta2 * v + (1 - beta2) * g * g
    return theta - lr_t * (m / (1 - beta1 ** t)) / ((np.sqrt(v) + eps) / math.sqrt(1 - beta2 ** t)), m, v


def adamw_decay_after_update(theta, g, m, v, t, lr_t, weight_decay, beta1, beta2, eps):
    m = beta1 * m + (1 - beta1) * g
    v = beta2 * v + (1 - beta2) * g * g
    theta = theta - lr_t * (m / (1 - beta1 ** t)) / (np.sqrt(v / (1 - beta2 ** t)) + eps)
    return theta * (1 - lr_t * weight_decay), m, v


def snmf_ratio_upside_down(X, F, G):
    XtF, FtF = X.T @ F, F.T @ F
    up = np.maximum(XtF, 0) + G @ np.maximum(-FtF, 0)
    down = np.maximum(-XtF, 0) + G @ np.maximum(FtF, 0)
    return G * np.sqrt(down / up)                               # what pushes G down on top


def snmf_without_square_root(X, F, G):
    XtF, FtF = X.T @ F, F.T @ F
    up = np.maximum(XtF, 0) + G @ np.maximum(-FtF, 0)
    down = np.maximum(-XtF, 0) + G @ np.maximum(FtF, 0)
    return G * (up / down)


def snmf_does_nothing(X, F, G):
    return G.copy()                                             # never increases J, never decreases it


def small_p_grad_transposed_term(W_in, W_out, M, sigma):
    n = W_in.shape[1]
    H_pos, H_neg = np.maximum(W_in, 0), np.maximum(-W_in, 0)
    R_pos = W_out @ H_pos - np.eye(n) - sigma * M
    R_neg = W_out @ H_neg + sigma * M
    c = 2 / (6 * n)
    d_W_out = c * (R_pos.T @ H_pos.T + R_neg @ H_neg.T)         # R⁺ transposed (fits, since it is square)
    d_W_in = c * ((W_in > 0) * (W_out.T @ R_pos) - (W_in < 0) * (W_out.T @ R_neg))
    return d_W_in, d_W_out


def small_p_grad_wrong_sign(W_in, W_out, M, sigma):
    n = W_in.shape[1]
    H_pos, H_neg = np.maximum(W_in, 0), np.maximum(-W_in, 0)
    R_pos = W_out @ H_pos - np.eye(n) - sigma * M
    R_neg = W_out @ H_neg + sigma * M
    c = 2 / (6 * n)
    d_W_out = c * (R_pos @ H_pos.T + R_neg @ H_neg.T)
    d_W_in = c * ((W_in > 0) * (W_out.T @ R_pos) + (W_in < 0) * (W_out.T @ R_neg))   # + where ReLU(−W) gives −
    return d_W_in, d_W_out


WRONG = [
    ("mlp_backward", mlp_backward_without_relu_mask, r"^d_W_in: relative error \S+ against centred finite"),
    ("mlp_backward", mlp_backward_wrong_shape, r"^d_W_in has shape \(6, 4\); it must have shape \(4, 6\)"),
    ("residual_backward", residual_backward_with_h_for_a, r"^d_W_out: relative error"),
    ("adamw_step", adamw_eps_inside_bias_correction, r"^step 1 of 5: theta differs from the reference AdamW"),
    ("adamw_step", adamw_decay_after_update, r"^step 1 of 5: theta differs"),
    ("snmf_update_G", snmf_ratio_upside_down, r"^iteration 1: the G step increased J"),
    ("snmf_update_G", snmf_without_square_root, r"(increased J|differs from the Ding–Li–Jordan update)"),
    ("snmf_update_G", snmf_does_nothing, r"differs from the Ding–Li–Jordan update"),
    ("small_p_grad", small_p_grad_transposed_term, r"^d_W_out: relative error"),
    ("small_p_grad", small_p_grad_wrong_sign, r"^d_W_in: relative error"),
]


@pytest.mark.parametrize("name, function, expected", WRONG, ids=[f.__name__ for _, f, _ in WRONG])
def test_a_wrong_implementation_is_caught(name, function, expected):
    passed, message = checker.grade(name, function)
    assert not passed, f"{function.__name__} passed the {name} check: {message}"
    assert re.search(expected, message), message
    assert "\n" not in message


# ----------------------------------------------------------------------------- 4. a correct student file passes

def test_a_correct_file_written_by_a_student_passes(tmp_path):
    """The CLI grades the student's file (not the package) and exits 0 when it is right."""
    (tmp_path / "mlp_backward.py").write_text(
        "def mlp_backward(W_in, W_out, x, h, a, d_y_hat):\n"
        "    d_W_out = d_y_hat.T @ a\n"
        "    d_h = (d_y_hat @ W_out) * (h > 0)\n"
        "    return d_h.T @ x, d_W_out\n", encoding="utf-8")
    completed = run_check("mlp_backward", "--exercises", str(tmp_path))
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert completed.stdout.startswith("mlp_backward: PASS: d_W_in "), completed.stdout
