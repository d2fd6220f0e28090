"""Crossed random-intercept linear mixed models with lmerTest's Satterthwaite degrees of freedom.

The model is ``delta ~ intermediate_family + (1|intermediate) + (1|target) + (1|target:language)
+ (1|seed)`` (any categorical fixed factor, any set of crossed intercepts), fitted by REML or ML
as lme4 does it (Bates et al. 2015, JSS 67(1), section 3): the deviance is profiled over the
fixed effects and the residual variance, everything is computed from cross-products formed once
(Z'Z, Z'X, Z'y, X'X, X'y, y'y) and one dense q x q Cholesky per evaluation (q = number of random
levels, a few hundred for a real grid). Degrees of freedom follow lmerTest 3.1: the Hessian of
the deviance at fixed (theta, sigma) in varpar = (theta, sigma), its Moore-Penrose inverse
(eigenvalues <= 1e-8 dropped), the Jacobian of cov(beta), and df = 2 f^2 / (g' A g) per
contrast. lmerTest takes the Hessian and Jacobian by numDeriv's Richardson extrapolation; here
they are analytic (differences of a double-precision deviance carry rounding noise that moves
the df in the third decimal). ``ddf="kenward-roger"`` reproduces pbkrtest's vcovAdj + Lb_ddf.

Why not statsmodels: it reports Wald z tests only, which with 2 NLI tasks are badly
anti-conservative (p = 1e-7 where the t test with ~2 df says 0.03), and it is ~100x slower here.

>>> from analysis.simulate import simulate_deltas
>>> import numpy as np
>>> frame = simulate_deltas(np.random.default_rng(0), families={"nli": 3, "qa": 3})
>>> fit = fit_crossed(frame)
>>> list(fit.coefficients["term"])
['(Intercept)', 'intermediate_family[T.qa]']
>>> row = fit.compare("nli", "qa")
>>> bool(row["df"] < 10)
True
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import optimize, stats
from scipy.linalg import lapack
from threadpoolctl import threadpool_limits

from xitt.schema import did_you_mean

# One BLAS thread: measured on the 8,100-row bench grid (q = 891 levels) 5.3 s with 1 thread vs
# 61 s with 2 on this 2-core machine under load, 0.056 vs 0.36 s on a 315-row grid; issue 12
# measured 0.69x lme4's time with 1 thread vs 3.0x (median) with numpy's default 2.
BLAS_THREADS = 1
SINGULAR_TOL = 1e-4  # lme4's isSingular() threshold on theta
FEW_LEVELS = 5
_HESS_TOL = 1e-8  # lmerTest's tolerance on Hessian eigenvalues
COEFFICIENT_COLUMNS = ("term", "estimate", "se", "df", "statistic", "p_value", "ci_low", "ci_high")


@dataclass(frozen=True)
class _CrossProducts:
    """Everything the deviance needs, computed once (y is centred; X keeps its intercept)."""

    ZtZ: np.ndarray  # q x q
    ZtXy: np.ndarray  # q x (p + 1): Z'X and Z'y side by side
    XtX: np.ndarray
    Xty: np.ndarray
    yty: float
    block: np.ndarray  # column of Z -> index of its factor
    n: int
    p: int


@dataclass(frozen=True)
class _State:
    ldL2: float
    ldRX2: float
    pwrss: float
    beta: np.ndarray
    xtvx_inv: np.ndarray  # (X'V^-1 X)^-1 in units of sigma^2 = RXi RXi'
    L: np.ndarray = field(repr=False)
    RZX: np.ndarray = field(repr=False)
    LX: np.ndarray = field(repr=False)


def _chol(A: np.ndarray) -> np.ndarray:
    """Lower Cholesky factor via LAPACK directly (the scipy.linalg wrappers cost more than q=30 work)."""
    L, info = lapack.dpotrf(A, lower=1, clean=1)
    if info != 0:
        raise np.linalg.LinAlgError(f"matrix not positive definite (dpotrf info={info})")
    return L


def _tri(L: np.ndarray, B: np.ndarray, *, trans: int = 0) -> np.ndarray:
    """Solve L x = B (trans=0) or L' x = B (trans=1) for lower-triangular L."""
    x, info = lapack.dtrtrs(L, B, lower=1, trans=trans)
    if info != 0:
        raise np.linalg.LinAlgError(f"singular triangular system (dtrtrs info={info})")
    return x


def _solve(cp: _CrossProducts, theta: np.ndarray) -> _State:
    """lme4's penalised least squares at ``theta`` (any sign: the deviance is even in theta)."""
    lam = np.asarray(theta, dtype=float)[cp.block]
    M = cp.ZtZ * np.outer(lam, lam)
    M[np.diag_indices_from(M)] += 1.0
    L = _chol(M)
    sol = _tri(L, lam[:, None] * cp.ZtXy)
    RZX, cu = sol[:, : cp.p], sol[:, cp.p]
    LX = _chol(cp.XtX - RZX.T @ RZX)
    cbeta = _tri(LX, cp.Xty - RZX.T @ cu)
    beta = _tri(LX, cbeta, trans=1)
    RXi = _tri(LX, np.eye(cp.p), trans=1)
    return _State(
        ldL2=2.0 * float(np.log(np.diag(L)).sum()),
        ldRX2=2.0 * float(np.log(np.diag(LX)).sum()),
        pwrss=float(cp.yty - cu @ cu - cbeta @ cbeta),
        beta=beta,
        xtvx_inv=RXi @ RXi.T,
        L=L,
        RZX=RZX,
        LX=LX,
    )


def _profiled(cp: _CrossProducts, theta: np.ndarray, reml: bool) -> float:
    """Profiled deviance (ML) or REML criterion at ``theta``, as lme4 reports it."""
    s = _solve(cp, theta)
    if reml:
        m = cp.n - cp.p
        return s.ldL2 + s.ldRX2 + m * (1.0 + np.log(2.0 * np.pi * s.pwrss / m))
    return s.ldL2 + cp.n * (1.0 + np.log(2.0 * np.pi * s.pwrss / cp.n))


def _pieces(cp: _CrossProducts, theta: np.ndarray, reml: bool, full: bool = True):
    """State at theta plus Q = Z'PZ (REML) or Z'V^-1 Z (ML), Z'PZ, u = Z'Py and T = S X'V^-1 Z.

    V = I + Z diag(theta^2) Z' (in units of sigma^2), P = V^-1 - V^-1 X S X' V^-1 with
    S = (X'V^-1 X)^-1; all from the cross-products via the Woodbury identity. With
    ``full=False`` only the diagonal of Q is formed (what the gradient needs; no q^3 product).
    """
    s = _solve(cp, theta)
    lam = np.asarray(theta, dtype=float)[cp.block]
    ZtX, Zty = cp.ZtXy[:, : cp.p], cp.ZtXy[:, cp.p]
    W = _tri(s.L, lam[:, None] * cp.ZtZ)
    F = ZtX.T - s.RZX.T @ W  # X'V^-1 Z
    G = _tri(s.LX, F)
    Ztr = Zty - ZtX @ s.beta
    u = Ztr - W.T @ _tri(s.L, lam * Ztr)
    if not full:
        diag_q = np.diag(cp.ZtZ) - np.einsum("ij,ij->j", W, W)
        if reml:
            diag_q -= np.einsum("ij,ij->j", G, G)
        return s, diag_q, u
    ZVZ = cp.ZtZ - W.T @ W
    ZPZ = ZVZ - G.T @ G
    return s, (ZPZ if reml else ZVZ), ZPZ, u, s.xtvx_inv @ F


def _blocksum(cp: _CrossProducts, B: np.ndarray) -> np.ndarray:
    E = np.eye(int(cp.block.max()) + 1)[cp.block]  # q x K indicator of each column's factor
    return E.T @ B @ E


def _profiled_grad_phi(cp: _CrossProducts, phi: np.ndarray, reml: bool) -> tuple[float, np.ndarray]:
    """Criterion and its gradient in phi = theta^2 (relative variances), analytic:
    d/dphi_k = tr(Z_k' Q Z_k) - m ||Z_k' P y||^2 / r^2 (m = n - p for REML, n for ML)."""
    phi = np.maximum(phi, 0.0)
    s, diag_q, u = _pieces(cp, np.sqrt(phi), reml, full=False)
    m = cp.n - cp.p if reml else cp.n
    dev = s.ldL2 + (s.ldRX2 if reml else 0.0) + m * (1.0 + np.log(2.0 * np.pi * s.pwrss / m))
    K = len(phi)
    trace = np.bincount(cp.block, weights=diag_q, minlength=K)
    quad = np.bincount(cp.block, weights=u**2, minlength=K)
    return dev, trace - m * quad / s.pwrss


def _varpar_derivatives(cp: _CrossProducts, theta: np.ndarray, sigma: float, reml: bool):
    """Hessian of lmerTest's devfun_vp (deviance at fixed theta, sigma) in varpar = (theta, sigma)
    and the Jacobian of vec(cov beta) = vec(sigma^2 S), both analytic.

    lmerTest gets both by numDeriv's Richardson extrapolation; the analytic values agree with
    its results to its accuracy (and, unlike differences of a double-precision deviance, carry
    no rounding noise of order 1e-3 that would move the df in the third decimal).
    """
    s, Q, ZPZ, u, T = _pieces(cp, theta, reml)
    K, r2, s2 = len(theta), s.pwrss, sigma**2
    # derivatives in phi = theta^2 of psi = log|V| (+ log|X'V^-1X|) and of r^2 = y'Py
    psi_1 = np.bincount(cp.block, weights=np.diag(Q), minlength=K)
    psi_2 = -_blocksum(cp, Q * Q)
    r2_1 = -np.bincount(cp.block, weights=u**2, minlength=K)
    r2_2 = 2.0 * _blocksum(cp, ZPZ * np.outer(u, u))
    d_1 = psi_1 + r2_1 / s2
    d_2 = psi_2 + r2_2 / s2
    H = np.empty((K + 1, K + 1))
    H[:K, :K] = 4.0 * np.outer(theta, theta) * d_2 + np.diag(2.0 * d_1)
    H[:K, K] = H[K, :K] = -2.0 * (2.0 * theta * r2_1) / sigma**3
    c = cp.n - cp.p if reml else cp.n
    H[K, K] = 6.0 * r2 / sigma**4 - 2.0 * c / s2
    jac = np.empty((cp.p * cp.p, K + 1))
    for k in range(K):
        Tk = T[:, cp.block == k]
        jac[:, k] = (2.0 * theta[k] * s2 * (Tk @ Tk.T)).ravel()
    jac[:, K] = (2.0 * sigma * s.xtvx_inv).ravel()
    return H, jac


def _optimize(cp: _CrossProducts, reml: bool, K: int) -> tuple[np.ndarray, bool, str]:
    """Minimise the criterion over theta >= 0 from theta = 1 as lme4 does (here L-BFGS-B with the
    analytic gradient), polish in phi = theta^2 (where a component at the boundary has a
    non-zero gradient and lands on exactly 0), keep the lower of the two and check the gradient;
    when the check fails, try Powell (derivative-free) before reporting non-convergence."""

    def f_phi(phi):
        return _profiled_grad_phi(cp, phi, reml)

    def f_theta(theta):
        dev, grad = f_phi(theta**2)
        return dev, 2.0 * theta * grad

    bounds = [(0.0, None)] * K
    opts = {"ftol": 1e-15, "gtol": 1e-10, "maxiter": 1000}
    first = optimize.minimize(f_theta, np.ones(K), jac=True, method="L-BFGS-B", bounds=bounds, options=opts)
    polish = optimize.minimize(f_phi, first.x**2, jac=True, method="L-BFGS-B", bounds=bounds, options=opts)
    theta = np.sqrt(np.maximum(polish.x, 0.0)) if polish.fun <= first.fun else np.abs(first.x)
    if _gradient_ok(f_phi, theta):
        return theta, True, ""
    powell = optimize.minimize(
        lambda t: _profiled(cp, np.abs(t), reml),
        theta,
        method="Powell",
        options={"xtol": 1e-10, "ftol": 1e-15, "maxiter": 20000},
    )
    if powell.fun < min(first.fun, polish.fun) - 1e-9 and _gradient_ok(f_phi, np.abs(powell.x)):
        return np.abs(powell.x), True, ""
    _, grad = f_phi(theta**2)
    return (
        theta,
        False,
        f"the deviance gradient is not zero at the optimum (max {np.abs(2 * theta * grad).max():.2g})",
    )


def _gradient_ok(f_phi, theta: np.ndarray, tol: float = 2e-3) -> bool:
    """lme4-like check: |d dev / d theta| < tol inside, and no descent direction at theta = 0."""
    _, grad_phi = f_phi(theta**2)
    inside = theta > 0
    return bool(
        np.all(np.abs(2 * theta[inside] * grad_phi[inside]) < tol) and np.all(grad_phi[~inside] > -tol)
    )


def _kenward_roger(cp: _CrossProducts, theta: np.ndarray, sigma: float):
    """pbkrtest's vcovAdj (Kenward & Roger 1997) from cross-products: the adjusted cov(beta)
    Phi_A and, for the df of each contrast, P_i = X' dSigma^-1/dsigma_i X and W = 2 IE^-1 over the
    variance parameters (one per random factor, then the residual), with Sigma = sigma^2 V."""
    s = _solve(cp, theta)
    K, p, s2 = len(theta), cp.p, sigma**2
    C, A = cp.ZtXy[:, :p], cp.ZtZ
    Li = _tri(s.L, np.diag(np.asarray(theta, dtype=float)[cp.block]))
    B = Li.T @ Li  # Lambda M^-1 Lambda, so that V^-1 = I - Z B Z'
    E = np.eye(len(B)) - B @ A  # V^-1 Z = Z E
    ZVZ, XVZ = A @ E, C.T @ E
    ZY = C - A @ B @ C  # Z' V^-1 X
    XV2X = cp.XtX - 2 * C.T @ B @ C + C.T @ B @ A @ B @ C
    XV3X = XV2X - ZY.T @ B @ ZY
    ZV2X, ZV2Z = E.T @ ZY, E.T @ A @ E
    blocks = [cp.block == k for k in range(K)]
    P = [-(XVZ[:, b] @ XVZ[:, b].T) / s2**2 for b in blocks] + [-XV2X / s2**2]
    Q, Kt = {}, np.empty((K + 1, K + 1))
    for i, bi in enumerate(blocks):
        for j, bj in enumerate(blocks):
            Q[i, j] = XVZ[:, bi] @ ZVZ[np.ix_(bi, bj)] @ XVZ[:, bj].T / s2**3
            Kt[i, j] = np.sum(ZVZ[np.ix_(bi, bj)] ** 2) / s2**2
        Q[i, K] = XVZ[:, bi] @ ZV2X[bi, :] / s2**3
        Q[K, i] = Q[i, K].T
        Kt[i, K] = Kt[K, i] = np.trace(ZV2Z[np.ix_(bi, bi)]) / s2**2
    Q[K, K] = XV3X / s2**3
    BA = B @ A
    Kt[K, K] = (cp.n - 2 * np.trace(BA) + np.sum(BA * BA.T)) / s2**2
    Phi = s2 * s.xtvx_inv
    IE = np.array(
        [
            [Kt[i, j] - 2 * np.sum(Phi * Q[i, j]) + np.sum((Phi @ P[i]) * (P[j] @ Phi)) for j in range(K + 1)]
            for i in range(K + 1)
        ]
    )
    W = 2 * (np.linalg.inv(IE) if np.abs(np.linalg.eigvalsh(IE)).min() > 1e-10 else np.linalg.pinv(IE))
    U = sum(W[i, j] * (Q[i, j] - P[i] @ Phi @ P[j]) for i in range(K + 1) for j in range(K + 1))
    return Phi + 2 * Phi @ U @ Phi, np.stack(P), W


def _kr_df(vec: np.ndarray, Phi: np.ndarray, P: np.ndarray, W: np.ndarray) -> float:
    """pbkrtest's Lb_ddf for one contrast (q = 1)."""
    Theta = np.outer(vec, vec) / (vec @ Phi @ vec)
    u = [Theta @ Phi @ Pi @ Phi for Pi in P]
    tr = np.array([np.trace(ui) for ui in u])
    A1 = float(tr @ W @ tr)
    A2 = float(sum(W[i, j] * np.sum(u[i] * u[j].T) for i in range(len(u)) for j in range(len(u))))
    Bq = (A1 + 6 * A2) / 2
    g = (2 * A1 - 5 * A2) / (3 * A2)
    c1, c2, c3 = g / (3 + 2 * (1 - g)), (1 - g) / (3 + 2 * (1 - g)), (3 - g) / (3 + 2 * (1 - g))
    V0 = 1 + c1 * Bq
    V0 = 0.0 if abs(V0) < 1e-10 else V0
    V1, V2 = 1 - c2 * Bq, 1 - c3 * Bq
    rho = ((1 - A2) / V1 if V1 != 0 else 0.0) ** 2 * V0 / V2
    return 4 + 3 / (rho - 1)


@dataclass(frozen=True)
class MixedFit:
    """A fitted crossed random-intercept model.

    ``coefficients``: term, estimate, se, df, statistic, p_value, ci_low, ci_high (one row per
    fixed-effect term; ``(Intercept)`` and ``<fixed>[T.<level>]`` in treatment coding).
    ``variance``: component, variance, sd, n_levels (one row per random factor, then Residual).
    ``diagnostics``: plain-language warnings (few levels, singular fit, non-convergence).
    """

    coefficients: pd.DataFrame
    variance: pd.DataFrame
    diagnostics: tuple[str, ...]
    reml: bool
    nobs: int
    loglik: float
    deviance: float
    converged: bool
    terms: tuple[str, ...] = ()
    fixed: str | None = None
    levels: tuple[str, ...] = ()
    level_counts: Mapping[str, int] = field(default_factory=dict)  # rows per fixed level
    nested_levels: Mapping[str, Mapping[str, int]] = field(default_factory=dict)  # e.g. tasks per family
    theta: np.ndarray = field(default=None, repr=False)
    sigma: float = float("nan")
    beta: np.ndarray = field(default=None, repr=False)
    vcov_beta: np.ndarray = field(default=None, repr=False)
    vcov_varpar: np.ndarray = field(default=None, repr=False)  # 2 H^+ over (theta..., sigma)
    jacobian: np.ndarray = field(default=None, repr=False)  # d vec(cov beta) / d varpar, (p*p, K+1)
    ddf: str = "satterthwaite"
    kenward_roger: tuple | None = field(default=None, repr=False)  # (Phi_A, P, W) when ddf="kenward-roger"

    def _vector(self, weights: Mapping[str, float]) -> np.ndarray:
        vec = np.zeros(len(self.terms))
        for name, weight in weights.items():
            if name not in self.terms:
                raise KeyError(
                    f"no fixed-effect term {name!r}; the terms are {list(self.terms)}."
                    f"{did_you_mean(name, self.terms)}"
                )
            vec[self.terms.index(name)] = float(weight)
        return vec

    def _test(self, vec: np.ndarray, level: float) -> pd.Series:
        if not 0 < level < 1:
            raise ValueError(f"level must be in (0, 1), e.g. 0.95; got {level}")
        estimate = float(vec @ self.beta)
        if self.kenward_roger is not None:
            phi_a, P, W = self.kenward_roger
            var, df = float(vec @ phi_a @ vec), _kr_df(vec, self.vcov_beta, P, W)
        else:
            var = float(vec @ self.vcov_beta @ vec)
            grad = np.einsum("i,ijk,j->k", vec, self.jacobian.reshape(len(vec), len(vec), -1), vec)
            denom = float(grad @ self.vcov_varpar @ grad)
            df = 2.0 * var**2 / denom if denom > 0 else float("inf")
        se = np.sqrt(var)
        stat = estimate / se if se > 0 else float("nan")
        crit = stats.t.ppf(0.5 + level / 2.0, df)
        return pd.Series(
            {
                "estimate": estimate,
                "se": se,
                "df": df,
                "statistic": stat,
                "p_value": float(2.0 * stats.t.sf(abs(stat), df)),
                "ci_low": estimate - crit * se,
                "ci_high": estimate + crit * se,
            }
        )

    def contrast(self, weights: Mapping[str, float], *, level: float = 0.95) -> pd.Series:
        """Test sum(w * beta[term]) = 0 with its own Satterthwaite df (lmerTest's contest1D).

        Returns a Series: estimate, se, df, statistic, p_value, ci_low, ci_high.
        """
        if not weights:
            raise ValueError(f"weights is empty; give e.g. {{{self.terms[-1]!r}: 1.0}}")
        return self._test(self._vector(weights), level).rename(
            " + ".join(f"{w:g}*{t}" for t, w in weights.items())
        )

    def _level_weights(self, name: str) -> dict[str, float]:
        if name not in self.levels:
            raise KeyError(
                f"{name!r} is not a level of {self.fixed!r}; levels: {list(self.levels)}."
                f"{did_you_mean(name, self.levels)}"
            )
        weights = {"(Intercept)": 1.0}
        if name != self.levels[0]:
            weights[f"{self.fixed}[T.{name}]"] = 1.0
        return weights

    def compare(self, level_a: str, level_b: str, *, level: float = 0.95) -> pd.Series:
        """Mean delta of ``level_a`` minus that of ``level_b`` (e.g. "nli" minus "qa").

        Returns estimate, se, df, statistic, p_value, ci_low, ci_high and n (rows in the two levels).
        """
        if self.fixed is None:
            raise ValueError(
                "this model has no fixed factor (fixed=None); refit with fixed='intermediate_family'"
            )
        if level_a == level_b:
            raise ValueError(f"compare two different levels of {self.fixed!r}; got {level_a!r} twice")
        vec = self._vector(self._level_weights(level_a)) - self._vector(self._level_weights(level_b))
        out = self._test(vec, level)
        out["n"] = int(self.level_counts[level_a] + self.level_counts[level_b])
        return out.rename(f"{level_a} - {level_b}")

    def compare_levels(self, weights: Mapping[str, float], *, level: float = 0.95) -> pd.Series:
        """Test sum(w * mean of level) = 0 for weights on levels of the fixed factor, e.g.
        {"nli|t1": 0.5, "nli|t2": 0.5, "qa|t1": -0.5, "qa|t2": -0.5} (an equal-target contrast).

        Returns estimate, se, df, statistic, p_value, ci_low, ci_high and n (rows in the levels used).
        """
        if self.fixed is None or not weights:
            raise ValueError("give weights on the levels of the fixed factor, e.g. {'nli': 1, 'qa': -1}")
        vec = sum(w * self._vector(self._level_weights(name)) for name, w in weights.items())
        out = self._test(np.asarray(vec, dtype=float), level)
        out["n"] = int(sum(self.level_counts[name] for name, w in weights.items() if w != 0))
        return out


def _codes(frame: pd.DataFrame, name: str) -> np.ndarray:
    """Integer codes 0..k-1 of a factor ("a:b" = the interaction), levels in sorted order; -1 for
    rows where a column is missing (NaN): those rows get no effect from this factor, which is how
    a term applies to part of the rows only (lme4's ``(0 + indicator | factor)``)."""
    columns = name.split(":")
    combined = np.zeros(len(frame), dtype=np.int64)
    absent = np.zeros(len(frame), dtype=bool)
    for col in columns:
        if col not in frame.columns:
            raise KeyError(
                f"random factor {name!r} needs column {col!r}, which the frame lacks."
                f"{did_you_mean(col, frame.columns)}"
            )
        absent |= frame[col].isna().to_numpy()
        codes, uniques = pd.factorize(frame[col].astype(str), sort=True)
        combined = combined * len(uniques) + codes
    out = np.full(len(frame), -1, dtype=np.int64)
    out[~absent] = np.unique(combined[~absent], return_inverse=True)[1].reshape(-1)
    return out


def _cross_products(X: np.ndarray, y: np.ndarray, codes: list[np.ndarray]) -> _CrossProducts:
    sizes = [int(c.max()) + 1 for c in codes]
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    q = int(offsets[-1])
    ZtZ = np.zeros((q, q))
    for k, ck in enumerate(codes):
        for j in range(k + 1):
            both = (ck >= 0) & (codes[j] >= 0)
            counts = np.bincount(ck[both] * sizes[j] + codes[j][both], minlength=sizes[k] * sizes[j]).reshape(
                sizes[k], sizes[j]
            )
            ZtZ[offsets[k] : offsets[k + 1], offsets[j] : offsets[j + 1]] = counts
            ZtZ[offsets[j] : offsets[j + 1], offsets[k] : offsets[k + 1]] = counts.T
    Xy = np.column_stack([X, y])
    ZtXy = np.vstack(
        [
            np.stack([np.bincount(c[c >= 0], weights=col[c >= 0], minlength=s) for col in Xy.T], axis=1)
            for c, s in zip(codes, sizes)
        ]
    )
    block = np.repeat(np.arange(len(codes)), sizes)
    return _CrossProducts(ZtZ, ZtXy, X.T @ X, X.T @ y, float(y @ y), block, len(y), X.shape[1])


def _fixed_design(frame: pd.DataFrame, fixed: str | None, reference: str | None):
    n = len(frame)
    if fixed is None:
        return np.ones((n, 1)), ("(Intercept)",), (), {}
    if fixed not in frame.columns:
        raise KeyError(f"no column {fixed!r} for the fixed factor.{did_you_mean(fixed, frame.columns)}")
    values = frame[fixed].astype(str).to_numpy()
    levels = sorted(set(values))
    if reference is not None:
        if reference not in levels:
            raise ValueError(f"reference {reference!r} is not a level of {fixed!r}; levels: {levels}")
        levels = [reference] + [lv for lv in levels if lv != reference]
    if len(levels) < 2:
        raise ValueError(
            f"fixed factor {fixed!r} has one level ({levels}); pass fixed=None for an intercept-only model"
        )
    X = np.column_stack([np.ones(n)] + [(values == lv).astype(float) for lv in levels[1:]])
    terms = ("(Intercept)",) + tuple(f"{fixed}[T.{lv}]" for lv in levels[1:])
    counts = {lv: int((values == lv).sum()) for lv in levels}
    return X, terms, tuple(levels), counts


def _nested_counts(
    frame: pd.DataFrame, fixed: str | None, codes: dict[str, np.ndarray]
) -> dict[str, dict[str, int]]:
    """For each random factor nested in the fixed factor: its number of levels per fixed level."""
    if fixed is None:
        return {}
    fcodes, flevels = pd.factorize(frame[fixed].astype(str), sort=True)
    out = {}
    for name, g in codes.items():
        pairs = np.unique(g[g >= 0] * len(flevels) + fcodes[g >= 0])
        if len(pairs) == g.max() + 1:  # every level of g sits in one fixed level
            per = np.bincount(pairs % len(flevels), minlength=len(flevels))
            out[name] = {str(lv): int(k) for lv, k in zip(flevels, per)}
    return out


def _random_diagnostics(fixed, names, sizes, theta, nested) -> list[str]:
    notes = []
    for name, size, th in zip(names, sizes, theta):
        singular = th < SINGULAR_TOL
        if name in nested:
            for lv, k in nested[name].items():
                if k == 1:
                    notes.append(
                        f"{fixed} {lv} has a single {name}: its effect is confounded with that {name}'s "
                        f"random effect, so contrasts involving {lv} are not identified (se and df meaningless)"
                    )
                elif k < FEW_LEVELS and not singular:
                    notes.append(
                        f"only {k} level{'s' * (k != 1)} of {name} in {fixed} {lv}: the {fixed} "
                        "contrast rests on so few units that its df are small and its CI wide"
                    )
            if singular:
                # Satterthwaite then counts rows, not tasks (lmerTest does the same): say so plainly.
                notes.append(
                    f"{name} explains no variance (singular fit: its variance is estimated at 0), so the "
                    f"{fixed} contrast is tested as if these {size} {name} levels were fixed and its df "
                    f"count rows, not {name}s; with so few {name}s a zero estimate is weak evidence of no "
                    f"{name} variance: check a test over {name}s (the family permutation)"
                )
        elif size < FEW_LEVELS:
            notes.append(f"{name} has only {size} levels (< {FEW_LEVELS}): its variance is poorly estimated")
        if singular and name not in nested:
            notes.append(f"{name} explains no variance (singular fit: its variance is estimated at 0)")
    return notes


def _prepare(frame, response, fixed, random, reference):
    """Checks, the fixed design and the codes of the random factors (single-level ones left out)."""
    if response not in frame.columns:
        raise KeyError(f"no response column {response!r}; columns: {list(frame.columns)}")
    if not random:
        raise ValueError("give at least one random factor, e.g. random=('intermediate', 'seed')")
    y_all = pd.to_numeric(frame[response], errors="coerce")
    notes = []
    if y_all.isna().any():
        notes.append(f"{int(y_all.isna().sum())} rows with a missing {response} were left out")
    data = frame.loc[y_all.notna()].reset_index(drop=True)
    codes = {}
    for name in random:
        c = _codes(data, name)
        if c.max() == 0:
            notes.append(f"random factor {name} has a single level and was left out")
        else:
            codes[name] = c
    if not codes:
        raise ValueError(f"every random factor in {list(random)} has a single level; there is nothing to fit")
    return data, y_all.dropna().to_numpy(dtype=float), _fixed_design(data, fixed, reference), codes, notes


def _vcov_varpar(H: np.ndarray, notes: list[str]) -> tuple[np.ndarray, bool]:
    """lmerTest's 2 H^+ (eigenvalues <= 1e-8 dropped) and whether H has no negative eigenvalue."""
    evals, evecs = np.linalg.eigh(H)
    negative = evals < -_HESS_TOL
    if negative.any():
        notes.append(
            "optimizer did not converge: the deviance Hessian has negative eigenvalue(s) "
            f"{', '.join(f'{e:.1e}' for e in evals[negative])}"
        )
    if (np.abs(evals) <= _HESS_TOL).any():
        notes.append(
            "some variance parameters are not identified (the deviance is flat in them); the df "
            "leave them out, as lmerTest does"
        )
    pos = evals > _HESS_TOL
    return 2.0 * (evecs[:, pos] / evals[pos]) @ evecs[:, pos].T, not negative.any()


def _blas_limited(fn):
    """Run ``fn`` with BLAS_THREADS BLAS threads (threadpoolctl), restoring the setting after."""

    @functools.wraps(fn)
    def run(*args, **kwargs):
        with threadpool_limits(limits=BLAS_THREADS, user_api="blas"):
            return fn(*args, **kwargs)

    return run


@_blas_limited
def fit_crossed(
    frame: pd.DataFrame,
    *,
    response: str = "delta",
    fixed: str | None = "intermediate_family",
    random: Sequence[str] = ("intermediate", "target", "target:language", "seed"),
    reml: bool = True,
    level: float = 0.95,
    ddf: str = "satterthwaite",
    reference: str | None = None,
    nested: Sequence[str] | None = None,
) -> MixedFit:
    """Fit ``response ~ fixed + (1|r1) + (1|r2) + ...`` with crossed random intercepts.

    ``frame`` needs the columns ``response``, ``fixed`` (categorical; treatment coding with the
    first level in sorted order, or ``reference``, as the baseline; ``fixed=None`` for an
    intercept-only model) and every column named in ``random`` ("a:b" is the interaction
    factor). Rows with a missing response are dropped (said in ``diagnostics``), random factors
    with a single level likewise. REML by default (``reml=False`` for ML). Fixed-effect tests
    use Satterthwaite df computed as lmerTest 3.1 does; CIs are t-based on the same df, so a CI
    excludes 0 exactly when p < 1 - level. ``ddf="kenward-roger"`` (REML only) uses pbkrtest's
    adjusted covariance and df instead. Few levels, singular fits and non-convergence never
    raise: they come back as sentences in ``diagnostics``. A row with NaN in a random factor's
    column gets no effect from that factor (a term on part of the rows). ``nested`` names the
    random factors whose levels per fixed level are checked (one task per family, few tasks);
    default all. Returns a :class:`MixedFit`.
    """
    if ddf not in ("satterthwaite", "kenward-roger"):
        raise ValueError(f"ddf must be 'satterthwaite' or 'kenward-roger'; got {ddf!r}")
    if ddf == "kenward-roger" and not reml:
        raise ValueError("Kenward-Roger df need a REML fit (as in pbkrtest/lmerTest); use reml=True")
    data, y, (X, terms, levels, counts), codes, notes = _prepare(frame, response, fixed, random, reference)
    names = list(codes)
    shift = float(y.mean())  # centring y keeps y'y - c'c free of cancellation; beta_0 gets it back
    cp = _cross_products(X, y - shift, list(codes.values()))
    theta, converged, message = _optimize(cp, reml, len(names))
    if message:
        notes.append(f"optimizer did not converge: {message}")
    state = _solve(cp, theta)
    crit = _profiled(cp, theta, reml)
    sigma = float(np.sqrt(state.pwrss / (cp.n - cp.p if reml else cp.n)))
    beta = state.beta.copy()
    beta[0] += shift
    H, J = _varpar_derivatives(cp, theta, sigma, reml)
    A, hessian_ok = _vcov_varpar(H, notes)
    sizes = [int(c.max()) + 1 for c in codes.values()]
    check = codes if nested is None else {k: v for k, v in codes.items() if k in nested}
    nested = _nested_counts(data, fixed, check)
    notes += _random_diagnostics(fixed, names, sizes, theta, nested)
    variance = pd.DataFrame(
        {
            "component": names + ["Residual"],
            "variance": np.append((theta * sigma) ** 2, sigma**2),
            "sd": np.append(theta * sigma, sigma),
            "n_levels": sizes + [cp.n],
        }
    )
    fit = MixedFit(
        coefficients=pd.DataFrame(),
        variance=variance,
        diagnostics=tuple(dict.fromkeys(notes)),
        reml=reml,
        nobs=cp.n,
        loglik=-crit / 2.0,
        deviance=crit,
        converged=converged and hessian_ok,
        terms=terms,
        fixed=fixed,
        levels=levels,
        level_counts=counts,
        nested_levels=nested,
        theta=theta,
        sigma=sigma,
        beta=beta,
        vcov_beta=sigma**2 * state.xtvx_inv,
        vcov_varpar=A,
        jacobian=J,
        ddf=ddf,
        kenward_roger=_kenward_roger(cp, theta, sigma) if ddf == "kenward-roger" else None,
    )
    rows = [fit._test(np.eye(len(terms))[i], level) for i in range(len(terms))]
    coefficients = pd.DataFrame(rows).assign(term=list(terms))
    object.__setattr__(fit, "coefficients", coefficients[list(COEFFICIENT_COLUMNS)])
    return fit
