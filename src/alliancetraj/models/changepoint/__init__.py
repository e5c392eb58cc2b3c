r"""The change-point model, written once; every back end reads it.

Every dyad's scores are explained by four Bayesian regression models on the
session number, one per class in :data:`alliancetraj.CLASSES`. Each model is
conjugate given its discrete change points, so its marginal likelihood is closed
form; the evidence of a class sums it over **every** admissible change-point
configuration. Sign and shape constraints enter through exact truncation terms.

The model
---------
A dyad has observed sessions :math:`t_1 < \dots < t_n` (actual session numbers:
gaps and irregular spacing are used as they are) and scores :math:`y`. Let
:math:`x = t - 1`. Given a class :math:`k` and a configuration :math:`\tau`,

.. math::

    y \mid \theta, \sigma^2, \tau, k \sim \mathcal N(X_{k\tau}\,\theta, \sigma^2 I),\qquad
    \sigma^2 \sim \mathrm{InvGamma}(\alpha, \beta),\qquad
    \theta \mid \sigma^2 \sim \mathcal N(m_k, \sigma^2 \operatorname{diag} v_k)
    \text{ restricted to } \theta_{\text{last}} > \kappa\sigma \text{ (classes 2-4)},

with the prior renormalised on the constrained region. :math:`\kappa`
(``size_floor``, default 2.5) is the label convention: a rupture's depth or a U's
amplitude is at least :math:`\kappa` residual SDs; smaller dips are noise around a
line, so ``linear`` is not nested in the other classes (with :math:`\kappa = 0` a
rupture of any size, down to zero, would take linear dyads). Each class has its own
:math:`\sigma^2` (four separate models). The designs:

``linear``
    :math:`X = [1, x]`, :math:`\theta = (a, b)` (level at session 1, slope);
    no configuration.
``u_shaped``
    a gradual dip on a trend: :math:`\tau = (s, w, e)`, the dip's start, bottom and
    end at tenths of the dyad's span :math:`T = t_n - t_1` (:math:`s = t_1 + f_s T`,
    ...), covering at least half of the span, each side at least a fifth of it and at
    least ``u_margin`` (2) sessions (at most 77 configurations, whatever :math:`n`);
    :math:`X = [1, x, -D_\tau(t)]` with the triangle :math:`D_\tau` (0 outside
    :math:`[s, e]`, rising linearly to 1 at :math:`w`), :math:`\theta = (a, b, c)`,
    amplitude :math:`c > \kappa\sigma`.
``v_shaped``
    :math:`\tau = (r, e)`: the rupture session :math:`r = t_i` (first session of
    the drop) and the repair session :math:`e = t_j` (first session back on the
    trend), both observed, :math:`i \ge 3` (two sessions before the rupture),
    :math:`i < j \le n` (at least one observed session from the repair on),
    :math:`e - r \le L` (``max_rupture_length``, default 4 sessions);
    :math:`X = [1, x, -\mathbb 1\{r \le t < e\}]`, :math:`\theta = (a, b, d)`,
    depth :math:`d > \kappa\sigma`.
``unrepaired_rupture``
    :math:`\tau = r = t_i`, :math:`i \ge 3`, at least two observed sessions
    :math:`t \ge r`; :math:`X = [1, x, -\mathbb 1\{t \ge r\}]`, :math:`d > \kappa\sigma`.

Configurations are uniform a priori within a class; classes have prior
probabilities :math:`\pi`. Prior means and variances:
:math:`m = (\text{level\_mean}, \text{slope\_mean}, \text{depth\_mean})`,
:math:`v = (\text{level\_var}, \text{slope\_var}, \text{depth\_var})` (variances
in units of :math:`\sigma^2`), and for ``u_shaped`` the same with the amplitude's.
The depth and amplitude priors are centred at 0 (``SIZE_PRIOR_MEAN``; held fixed by
empirical Bayes and the PyMC mixture: above the floor the prior is a half-normal-like tail
whose spread is estimated). Empirical Bayes keeps ``depth_var`` and ``amplitude_var`` at least 16 (prior SD of
four residual SDs above the floor), and the class shares get a Dirichlet prior
(concentration 5 below 100 dyads, 2 above).

Closed-form evidence
--------------------
With :math:`\Lambda_0 = \operatorname{diag}(1/v)`,
:math:`\Lambda_n = \Lambda_0 + X^\top X`,
:math:`\eta = \Lambda_0 m + X^\top y`, :math:`m_n = \Lambda_n^{-1}\eta`,
:math:`\alpha_n = \alpha + n/2` and
:math:`\beta_n = \beta + \tfrac12 (y^\top y + m^\top \Lambda_0 m - \eta^\top \Lambda_n^{-1} \eta)`,
the unconstrained evidence is

.. math::

    \log p(y \mid \tau, k) = -\tfrac n2 \log 2\pi + \tfrac12 \log|\Lambda_0|
      - \tfrac12 \log|\Lambda_n| + \alpha \log\beta - \alpha_n \log\beta_n
      + \log\Gamma(\alpha_n) - \log\Gamma(\alpha).

The constraint :math:`\theta_{\text{last}} > \kappa\sigma` multiplies it by
:math:`P(\theta_{\text{last}} > \kappa\sigma \mid y) / P(\theta_{\text{last}} > \kappa\sigma)`.
Under the normal-inverse-gamma model both are noncentral-t CDFs
:math:`F(z; \nu, \lambda)` with :math:`z = m_{n,\text{last}} / \sqrt{(\beta_n/\alpha_n)
(\Lambda_n^{-1})_{\text{last}}}`, :math:`\nu = 2\alpha_n`,
:math:`\lambda = \kappa / \sqrt{(\Lambda_n^{-1})_{\text{last}}}` (and the prior's with
:math:`m, \beta, \alpha, v`). For :math:`\kappa = 0` they are Student-t CDFs
:math:`T_\nu(z)`, used exactly; otherwise the engines use the normal approximation
:math:`\Phi\big((z(1 - 1/4\nu) - \lambda)/\sqrt{1 + z^2/2\nu}\big)` (Abramowitz and
Stegun 26.7.10; absolute error in the log CDF below 0.06 where the CDF exceeds
:math:`e^{-6}`, :math:`\nu \ge 8`, :math:`\lambda \ge 1.5`; exact at :math:`z = 0`). The
explicit PyMC check samples the exact truncation.
The class evidence is :math:`p(y \mid k) = |\mathcal T_k|^{-1} \sum_\tau p(y \mid \tau, k)`
and :math:`P(k \mid y) \propto \pi_k\, p(y \mid k)`.

Cumulative sums of the masked moments over the session grid give every
rupture configuration's :math:`X^\top X` and :math:`X^\top y` at once (the U's
triangles by one compiled pass); the trend block :math:`[1, x]` is shared by every
configuration of every class, so each configuration costs a Schur complement, not a
matrix inverse.

Modules (each imports only those above it in this list)
-------------------------------------------------------
``spec``
    Classes, admissible configurations, design columns, the hyperparameters (names,
    transforms, bounds), ``MIN_SESSIONS``, standardisation.
``tdist``
    ``log T`` and ``log t`` by SciPy (the reference).
``statistics``
    The one sufficient-statistics builder (:class:`ConfigStats`).
``evidence``
    The numpy reference evidence of every configuration, and the explicit
    single-configuration update.
``kernels``, ``tcdf``
    The compiled (numba) class-evidence kernel with its gradient and the truncated-t
    summaries; the tabulated t CDF they read (numba imported only when called).
``predictive``, ``posterior``
    Prior-predictive samplers; the exact posterior of one dyad.
``checks``
    Per-dyad posterior predictive checks (:func:`alliancetraj.fit_checks`).

Adding a class or a configuration family
----------------------------------------
See ``DEVELOPERS.md`` ("The change-point model"): the configuration space and the
design go in ``spec``, the statistics of the new column in ``statistics``, its
Schur-complement term in ``evidence`` and ``kernels``.
"""

from .spec import (
    CLASSES,
    MIN_SESSIONS,
    Hyperparameters,
    Settings,
    admissible,
    design,
    design_on,
    standardisation,
)

__all__ = [
    "CLASSES",
    "MIN_SESSIONS",
    "Hyperparameters",
    "Settings",
    "admissible",
    "design",
    "design_on",
    "standardisation",
]
