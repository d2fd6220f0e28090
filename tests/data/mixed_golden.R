# Golden values for tests/test_mixed.py: lme4 1.1-31 + lmerTest 3.1-3 (R 4.x, Debian packages).
# Run from the repository root:  Rscript tests/data/mixed_golden.R
# The CSVs were written once by analysis.simulate.simulate_deltas (delta rounded to 6 decimals):
#   mixed_balanced.csv   default_rng(20261124), defaults (nli 2 + qa 4 tasks, 3 targets x 5 languages x 3 seeds)
#   mixed_unbalanced.csv default_rng(7), nli 2 + qa 3 + paraphrase 2, 4 x 4 x 3, effects 1.5/0/0.5, missing=0.2
#   mixed_singular.csv   default_rng(1), nli 3 + qa 3, 4 x 5 x 3, sd_target=0, sd_intermediate=0.8
#   mixed_scaled.csv     default_rng(5), nli 3 + qa 4, 3 x 6 x 3, sd_residual=0.01, sd_intermediate=3, sd_seed=0.001
#                        (badly scaled: theta up to ~200; lme4's default tolerances stop at REML crit
#                        -2115.72803, the optimum is -2115.72875)
suppressMessages({library(lmerTest)})
options(digits = 12, width = 200)
# lme4's default tolerances (nloptwrap, ftol_abs 1e-8) stop up to 1e-4 short of the optimum on flat
# likelihoods (the singular grid); tight tolerances give the values the tests need at 1e-4 relative.
ctrl <- lmerControl(optimizer = "nloptwrap", optCtrl = list(xtol_abs = 1e-12, ftol_abs = 1e-14, xtol_rel = 1e-12, maxeval = 1e5))
form <- delta ~ intermediate_family + (1 | intermediate) + (1 | target) + (1 | target:language) + (1 | seed)
show <- function(name, reml) {
  d <- read.csv(file.path("tests/data", paste0("mixed_", name, ".csv")))
  d$seed <- factor(d$seed)
  m <- lmer(form, data = d, REML = reml, control = ctrl)
  cat("\n=====", name, if (reml) "REML" else "ML", "nobs", nrow(d), "\n")
  print(summary(m, ddf = "Satterthwaite")$coefficients)
  print(as.data.frame(VarCorr(m))[, c("grp", "vcov")])
  cat("logLik", format(as.numeric(logLik(m)), digits = 15), "isSingular", isSingular(m), "\n")
  cat("theta", names(getME(m, "theta")), "\n      ", sprintf("%.17g", getME(m, "theta")), "\n")
  cat("criterion", sprintf("%.12f", -2 * as.numeric(logLik(m))), "\n")
  lev <- levels(factor(d$intermediate_family))
  if (length(lev) == 3) {  # nli - qa when paraphrase sits between them: columns (Intercept), paraphrase, qa
    print(contest(m, L = c(0, 0, -1), joint = FALSE, ddf = "Satterthwaite", confint = TRUE))
  }
  if (reml) {  # Kenward-Roger (pbkrtest 0.5.2 through lmerTest)
    cat("Kenward-Roger\n")
    print(summary(m, ddf = "Kenward-Roger")$coefficients)
    if (length(lev) == 3) print(contest(m, L = c(0, 0, -1), joint = FALSE, ddf = "Kenward-Roger", confint = TRUE))
  }
}
for (name in c("balanced", "unbalanced", "singular", "scaled")) show(name, TRUE)
show("balanced", FALSE)
show("unbalanced", FALSE)
