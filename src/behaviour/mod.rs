//! Behaviour policies: which sampler produces each training batch.
//!
//! A behaviour is a schedule of steps cycled over training (step i uses
//! `schedule[i % len]`), each step one or more batches ([`Step`], [`Source`]),
//! as data in the config rather than modulo arithmetic in the loop. The
//! Teacher ([`teacher`]) and GAFN ([`gafn`]) have modules of their own;
//! their hooks in the learning step of a batch are [`hooks`].

pub mod gafn;
pub mod hooks;
pub mod teacher;

pub use gafn::GafnConfig;
pub use teacher::TeacherConfig;

use crate::check::Invalid;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One batch of a step of the schedule: where it comes from and what it is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Source {
    /// Fresh samples of the student (with the behaviour's epsilon), trained on.
    #[serde(rename = "student")]
    Student,
    /// Fresh samples of the teacher (with the behaviour's epsilon), trained on.
    #[serde(rename = "teacher")]
    Teacher,
    /// Replay from the `[buffer]` (terminal states get fresh backward trajectories), trained on.
    #[serde(rename = "buffer")]
    Buffer,
    /// Student samples refined by the `[local_search]`, trained on.
    #[serde(rename = "student+ls")]
    StudentLs,
    /// Teacher samples refined by the `[local_search]` (accepting by teacher reward), trained on.
    #[serde(rename = "teacher+ls")]
    TeacherLs,
    /// Fresh student samples that only enter the `[buffer]` (no training step).
    #[serde(rename = "student->buffer")]
    StudentFill,
    /// Fresh teacher samples that only enter the `[buffer]` (no training step),
    /// with the student's teacher signal as their priority.
    #[serde(rename = "teacher->buffer")]
    TeacherFill,
}

impl Source {
    /// Whether the batch is freshly sampled (counted in the metrics and added to the buffer).
    pub fn is_fresh(self) -> bool {
        self != Source::Buffer
    }

    /// Whether student (and teacher) train on the batch; `false` for the
    /// `->buffer` sources.
    pub fn trains(self) -> bool {
        !matches!(self, Source::StudentFill | Source::TeacherFill)
    }

    /// Whether the batch needs a `[buffer]`.
    pub fn needs_buffer(self) -> bool {
        matches!(
            self,
            Source::Buffer | Source::StudentFill | Source::TeacherFill
        )
    }

    /// Whether local search refines the batch.
    pub fn local_search(self) -> bool {
        matches!(self, Source::StudentLs | Source::TeacherLs)
    }

    /// Whether the teacher network samples the batch.
    pub fn teacher(self) -> bool {
        matches!(
            self,
            Source::Teacher | Source::TeacherLs | Source::TeacherFill
        )
    }
}

/// One step of the schedule: a single batch (`"teacher"`), or several batches
/// in order (`["teacher->buffer", "buffer"]`: the teacher fills the buffer,
/// then the student trains on a buffer batch).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum Step {
    /// One batch.
    One(Source),
    /// Several batches, in order.
    Many(Vec<Source>),
}

/// The names of the sources, as a schedule writes them.
pub const SOURCE_NAMES: &[&str] = &[
    "student",
    "teacher",
    "buffer",
    "student+ls",
    "teacher+ls",
    "student->buffer",
    "teacher->buffer",
];

/// Written by hand rather than `#[serde(untagged)]`, whose error ("data did
/// not match any variant") names neither the bad source nor the allowed
/// ones: a string is one source, a list several, and an unknown name is an
/// error listing [`SOURCE_NAMES`].
impl<'de> Deserialize<'de> for Step {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct StepVisitor;
        impl<'de> serde::de::Visitor<'de> for StepVisitor {
            type Value = Step;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                write!(
                    f,
                    "a source ({}) or a list of sources",
                    SOURCE_NAMES
                        .iter()
                        .map(|s| format!("`{s}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Step, E> {
                match Source::deserialize(serde::de::value::StrDeserializer::<E>::new(v)) {
                    Ok(s) => Ok(Step::One(s)),
                    Err(_) => Err(E::unknown_variant(v, SOURCE_NAMES)),
                }
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Step, A::Error> {
                let mut sources = Vec::new();
                while let Some(s) = seq.next_element::<Source>()? {
                    sources.push(s);
                }
                Ok(Step::Many(sources))
            }
        }
        d.deserialize_any(StepVisitor)
    }
}

impl Step {
    /// The batches of the step, in order.
    pub fn sources(&self) -> &[Source] {
        match self {
            Step::One(s) => std::slice::from_ref(s),
            Step::Many(v) => v,
        }
    }
}

/// The paper's schedule (docs/grid.md "Source schedule" and "Back-and-forth
/// local search"), as one period of 16 steps, shortened to its smallest period:
/// - without a buffer, step i samples from the student, or with a teacher from
///   the student when (i/2) % 2 == 0 and from the teacher otherwise (S S T T);
/// - with a buffer, odd steps replay and even steps sample as above (S B T B);
/// - local search refines student steps where (i/2) % 8 == 7 (no teacher) or
///   teacher steps where (i/4) % 4 == 3.
pub fn paper_schedule(teacher: bool, buffer: bool, local_search: bool) -> Vec<Step> {
    let full: Vec<Source> = (0..16)
        .map(|i| {
            if buffer && i % 2 == 1 {
                return Source::Buffer;
            }
            let from_teacher = teacher && (i / 2) % 2 == 1;
            match (from_teacher, local_search) {
                (true, true) if (i / 4) % 4 == 3 => Source::TeacherLs,
                (true, _) => Source::Teacher,
                (false, true) if !teacher && (i / 2) % 8 == 7 => Source::StudentLs,
                (false, _) => Source::Student,
            }
        })
        .collect();
    let period = [1, 2, 4, 8, 16]
        .into_iter()
        .find(|&p| (0..16).all(|i| full[i] == full[i % p]))
        .unwrap_or(16);
    full[..period].iter().map(|&s| Step::One(s)).collect()
}

/// The round schedule of the discovery tasks (docs/discovery.md "Training
/// loop"): round r's online batch comes from the student when r % 3 is 0 or 1
/// and from the teacher when it is 2 (`[student]` without a teacher); with
/// local search every online batch is refined; with a buffer, an offline
/// batch from the buffer follows the online one in every round.
pub fn discovery_schedule(teacher: bool, buffer: bool, local_search: bool) -> Vec<Step> {
    let (s, t) = if local_search {
        (Source::StudentLs, Source::TeacherLs)
    } else {
        (Source::Student, Source::Teacher)
    };
    let online = if teacher { vec![s, s, t] } else { vec![s] };
    online
        .into_iter()
        .map(|o| match buffer {
            true => Step::Many(vec![o, Source::Buffer]),
            false => Step::One(o),
        })
        .collect()
}

/// The student's own samples.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct OnPolicyConfig {
    /// Probability mass mixed uniformly into every action distribution while
    /// training: p = (1 - epsilon) p + epsilon / n_actions. Unset: the task
    /// table's eps on the sequence tasks (0.01; sehstr 0.05), else 0.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub epsilon: Option<f64>,
    /// The batches of step i: `schedule[i % len]`, each entry a source
    /// (`student`, `buffer`, `student+ls`, `student->buffer`) or a list of
    /// sources trained in order. Unset: the paper's schedule for the
    /// environment, buffer and local search; the resolved config records it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schedule: Option<Vec<Step>>,
}

impl OnPolicyConfig {
    /// Range checks.
    pub fn check(&self) -> Result<(), Invalid> {
        check_epsilon(self.epsilon())
    }

    /// The exploration of training rollouts (unset: none; the plan fills
    /// the environment's default first).
    pub fn epsilon(&self) -> f64 {
        self.epsilon.unwrap_or(0.0)
    }
}

fn check_epsilon(e: f64) -> std::result::Result<(), Invalid> {
    if (0.0..=1.0).contains(&e) {
        Ok(())
    } else {
        Err(Invalid::new("behaviour.epsilon", "must be in [0, 1]"))
    }
}

#[cfg(test)]
mod schedule_tests {
    use super::Source::{
        self, Buffer as B, Student as S, StudentLs as SL, Teacher as T, TeacherLs as TL,
    };
    use super::{discovery_schedule, paper_schedule, Step};

    fn one(v: Vec<Source>) -> Vec<Step> {
        v.into_iter().map(Step::One).collect()
    }

    /// The reference trainer's branches evaluated by hand for i = 0..15.
    #[test]
    fn paper_schedules() {
        assert_eq!(paper_schedule(false, false, false), one(vec![S]));
        assert_eq!(paper_schedule(false, true, false), one(vec![S, B]));
        assert_eq!(paper_schedule(true, false, false), one(vec![S, S, T, T]));
        assert_eq!(paper_schedule(true, true, false), one(vec![S, B, T, B]));
        // TB + LS: on-policy steps with (i/2) % 8 == 7, i.e. i = 14, 15.
        let mut tb_ls: Vec<Source> = vec![S; 14];
        tb_ls.extend([SL, SL]);
        assert_eq!(paper_schedule(false, false, true), one(tb_ls));
        // TB + LS + buffer: even steps only, i = 14.
        let mut tb_ls_b: Vec<Source> = [S, B].repeat(7);
        tb_ls_b.extend([SL, B]);
        assert_eq!(paper_schedule(false, true, true), one(tb_ls_b));
        // Teacher + LS: teacher steps with (i/4) % 4 == 3: i = 14, 15.
        let mut t_ls = [S, S, T, T].repeat(3);
        t_ls.extend([S, S, TL, TL]);
        assert_eq!(paper_schedule(true, false, true), one(t_ls));
        // Teacher + LS + buffer: i = 14 (teacher, even, (14/4) % 4 == 3).
        let mut t_ls_b = [S, B, T, B].repeat(3);
        t_ls_b.extend([S, B, TL, B]);
        assert_eq!(paper_schedule(true, true, true), one(t_ls_b));
    }

    /// Discovery rounds: S S T online, each followed by a buffer batch.
    #[test]
    fn discovery_schedules() {
        assert_eq!(discovery_schedule(false, false, false), one(vec![S]));
        assert_eq!(
            discovery_schedule(true, true, false),
            vec![
                Step::Many(vec![S, B]),
                Step::Many(vec![S, B]),
                Step::Many(vec![T, B])
            ]
        );
        assert_eq!(discovery_schedule(true, false, true), one(vec![SL, SL, TL]));
    }
}

#[cfg(test)]
mod step_tests {
    use super::*;

    /// A step reads a source or a list of sources; every source name
    /// round-trips; an unknown name is an error listing the allowed ones.
    #[test]
    fn steps_read_sources_and_name_the_allowed_ones() {
        #[derive(Deserialize)]
        struct S {
            schedule: Vec<Step>,
        }
        let s: S = toml::from_str(
            "schedule = [\"student\", [\"teacher->buffer\", \"buffer\"], \"teacher+ls\"]",
        )
        .unwrap();
        assert_eq!(
            s.schedule,
            vec![
                Step::One(Source::Student),
                Step::Many(vec![Source::TeacherFill, Source::Buffer]),
                Step::One(Source::TeacherLs),
            ]
        );
        for name in SOURCE_NAMES {
            let s: S = toml::from_str(&format!("schedule = [\"{name}\"]")).unwrap();
            let back = toml::Value::try_from(&s.schedule[0]).unwrap();
            assert_eq!(back.as_str(), Some(*name));
        }
        let e = toml::from_str::<S>("schedule = [\"studnt\"]")
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("studnt") && e.contains("`teacher->buffer`"),
            "{e}"
        );
        let e = toml::from_str::<S>("schedule = [1]")
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("a source (`student`"), "{e}");
    }
}
