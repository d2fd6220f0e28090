# Golden values for tests/test_headline.py: the design model of analysis/headline.py fitted by
# lme4 + lmerTest (Satterthwaite) + pbkrtest (Kenward-Roger), Debian packages r-cran-lme4,
# r-cran-lmertest, r-cran-pbkrtest. Run from the repository root:
#   Rscript tests/data/design_golden.R   (writes tests/data/design_golden.json)
# The CSVs were written once by analysis.simulate.simulate_scores (score rounded to 6 decimals):
#   design_balanced.csv   default_rng(11), defaults (nli 2 + qa 4, 3 targets x 5 languages x 3 seeds)
#   design_unbalanced.csv default_rng(12), nli 2 + qa 3, 4 x 4 x 3, effects 1.5/0, missing=0.1, missing_runs=0.1
#   design_singular.csv   default_rng(13), nli 3 + qa 3, 3 x 4 x 3, sd_intermediate=0
suppressMessages({library(lmerTest); library(jsonlite)})
ctrl <- lmerControl(optimizer = "nloptwrap", check.nobs.vs.nlev = "ignore", check.nobs.vs.nRE = "ignore",
                    optCtrl = list(xtol_abs = 1e-12, ftol_abs = 1e-14, xtol_rel = 1e-12, maxeval = 1e5))
form <- score ~ arm + (0 + inter | intermediate) + (1 | language) + (0 + inter | language_gain) +
  (0 + inter | stage) + (0 + inter | run) + (0 + base | run)
names_of <- c("intermediate/inter" = "intermediate", "language/(Intercept)" = "language",
              "language_gain/inter" = "language_gain", "stage/inter" = "stage", "run/inter" = "run",
              "run/base" = "baseline_run", "Residual/NA" = "Residual")
golden <- list()
for (name in c("balanced", "unbalanced", "singular")) {
  d <- read.csv(file.path("tests/data", paste0("design_", name, ".csv")))
  d$inter <- as.numeric(d$intermediate != "none"); d$base <- 1 - d$inter
  d$arm <- factor(paste(d$encoder, d$intermediate_family, d$target, sep = "|"))
  d$language <- paste(d$encoder, d$target, d$language, sep = "/")
  d$language_gain <- paste(d$target, sub("^.*/", "", d$language), sep = "/")
  d$stage <- paste(d$encoder, d$intermediate, d$seed, sep = "/")
  d$run <- paste(d$encoder, d$intermediate, d$target, d$seed, sep = "/")
  m <- lmer(form, data = d, REML = TRUE, control = ctrl)
  b <- fixef(m)
  cell <- function(lv) { v <- setNames(rep(0, length(b)), names(b)); v[1] <- 1
    nm <- paste0("arm", lv); if (nm %in% names(v)) v[nm] <- 1; v }
  targets <- sort(unique(d$target)); enc <- d$encoder[1]
  L <- Reduce(`+`, lapply(targets, function(t) cell(paste(enc, "nli", t, sep = "|")) -
                                                cell(paste(enc, "qa", t, sep = "|")))) / length(targets)
  sat <- contest(m, L = L, joint = FALSE, ddf = "Satterthwaite")
  kr <- contest(m, L = L, joint = FALSE, ddf = "Kenward-Roger")
  vc <- as.data.frame(VarCorr(m))
  key <- paste(sub("\\.[0-9]+$", "", vc$grp), vc$var1, sep = "/")
  golden[[name]] <- list(
    nobs = nrow(d), loglik = as.numeric(logLik(m)), singular = isSingular(m),
    variance = setNames(as.list(vc$vcov), names_of[key]),
    satterthwaite = list(estimate = sat$Estimate, se = sat[["Std. Error"]], df = sat$df, p = sat[["Pr(>|t|)"]]),
    kenward_roger = list(se = kr[["Std. Error"]], df = kr$df, p = kr[["Pr(>|t|)"]])
  )
  cat(name, "done\n")
}
golden$versions <- list(R = R.version.string, lme4 = as.character(packageVersion("lme4")),
                        lmerTest = as.character(packageVersion("lmerTest")),
                        pbkrtest = as.character(packageVersion("pbkrtest")))
write(toJSON(golden, auto_unbox = TRUE, digits = NA, pretty = TRUE), "tests/data/design_golden.json")
