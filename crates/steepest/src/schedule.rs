//! Learning-rate schedules: a factor multiplied into every group's `lr`.
//!
//! `factor(t)` is evaluated at `t`, the 0-based index of the optimizer step
//! being taken (steps skipped for non-finite gradients do not count).
//! Schedules compose: [`Schedule::Product`] multiplies factors and
//! [`Schedule::Sequence`] switches from one schedule to another at a step.
//!
//! ```
//! use steepest::Schedule;
//! // 100 warm-up steps, then cosine decay to 10% over 1000 steps in all.
//! let s = Schedule::Cosine { total_steps: 1000, warmup_steps: 100, min_factor: 0.1 };
//! assert!((s.factor(99) - 1.0).abs() < 1e-12);
//! assert!((s.factor(999) - 0.1).abs() < 1e-2);
//! ```

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A learning-rate schedule (a multiplier on each group's base `lr`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Schedule {
    /// Factor 1.
    #[default]
    Constant,
    /// `start + (1 - start) * min(1, (t+1)/warmup_steps)`: reaches 1 at step `warmup_steps - 1`.
    LinearWarmup {
        /// Steps to reach factor 1.
        warmup_steps: u64,
        /// Factor before the first step (0 ≤ start ≤ 1).
        start_factor: f64,
    },
    /// Linear warm-up from 0 (as [`Schedule::LinearWarmup`] with start 0), then
    /// `min + (1-min) (1 + cos(π p)) / 2` with `p = (t - warmup)/(total - warmup)` clamped to [0, 1].
    Cosine {
        /// Steps of the whole schedule (warm-up included).
        total_steps: u64,
        /// Warm-up steps (0 for none).
        warmup_steps: u64,
        /// Final factor.
        min_factor: f64,
    },
    /// `gamma ^ floor(t / step_size)`.
    StepDecay {
        /// Steps between decays (> 0).
        step_size: u64,
        /// Decay factor per period (> 0).
        gamma: f64,
    },
    /// Linear warm-up, then `sqrt(max(warmup,1) / (t+1))`: the inverse square root
    /// schedule of the Transformer paper and of AdaGrad-style analyses.
    InverseSqrt {
        /// Warm-up steps (0 for none).
        warmup_steps: u64,
    },
    /// Product of factors.
    Product {
        /// The schedules whose factors are multiplied.
        factors: Vec<Schedule>,
    },
    /// `first` for `t < switch_at`, then `then` evaluated at `t - switch_at`.
    Sequence {
        /// Schedule before the switch.
        first: Box<Schedule>,
        /// Step index of the switch.
        switch_at: u64,
        /// Schedule after the switch.
        then: Box<Schedule>,
    },
}

fn warmup(t: u64, steps: u64) -> f64 {
    if steps == 0 {
        1.0
    } else {
        ((t + 1) as f64 / steps as f64).min(1.0)
    }
}

impl Schedule {
    /// The factor at 0-based step index `t`.
    pub fn factor(&self, t: u64) -> f64 {
        match self {
            Schedule::Constant => 1.0,
            Schedule::LinearWarmup {
                warmup_steps,
                start_factor,
            } => start_factor + (1.0 - start_factor) * warmup(t, *warmup_steps),
            Schedule::Cosine {
                total_steps,
                warmup_steps,
                min_factor,
            } => {
                if t < *warmup_steps {
                    return warmup(t, *warmup_steps);
                }
                let span = total_steps.saturating_sub(*warmup_steps).max(1) as f64;
                let p = ((t - warmup_steps) as f64 / span).clamp(0.0, 1.0);
                min_factor + (1.0 - min_factor) * 0.5 * (1.0 + (std::f64::consts::PI * p).cos())
            }
            Schedule::StepDecay { step_size, gamma } => gamma.powf((t / (*step_size).max(1)) as f64),
            Schedule::InverseSqrt { warmup_steps } => {
                if t < *warmup_steps {
                    warmup(t, *warmup_steps)
                } else {
                    ((*warmup_steps).max(1) as f64 / (t + 1) as f64).sqrt()
                }
            }
            Schedule::Product { factors } => factors.iter().map(|s| s.factor(t)).product(),
            Schedule::Sequence { first, switch_at, then } => {
                if t < *switch_at {
                    first.factor(t)
                } else {
                    then.factor(t - switch_at)
                }
            }
        }
    }

    /// Checks the parameters (a typed error naming the field, never a panic).
    pub fn validate(&self) -> Result<()> {
        let bad = |field: &str, msg: String| Err(Error::hyper("schedule", field, msg));
        match self {
            Schedule::Constant => Ok(()),
            Schedule::LinearWarmup { start_factor, .. } => {
                if !(0.0..=1.0).contains(start_factor) {
                    return bad("start_factor", format!("must be in [0, 1], got {start_factor}"));
                }
                Ok(())
            }
            Schedule::Cosine {
                total_steps,
                warmup_steps,
                min_factor,
            } => {
                if !(0.0..=1.0).contains(min_factor) {
                    return bad("min_factor", format!("must be in [0, 1], got {min_factor}"));
                }
                if warmup_steps > total_steps {
                    return bad(
                        "warmup_steps",
                        format!("{warmup_steps} exceeds total_steps {total_steps}"),
                    );
                }
                Ok(())
            }
            Schedule::StepDecay { step_size, gamma } => {
                if *step_size == 0 {
                    return bad("step_size", "must be > 0".into());
                }
                if !(*gamma > 0.0 && gamma.is_finite()) {
                    return bad("gamma", format!("must be a finite number > 0, got {gamma}"));
                }
                Ok(())
            }
            Schedule::InverseSqrt { .. } => Ok(()),
            Schedule::Product { factors } => factors.iter().try_for_each(Schedule::validate),
            Schedule::Sequence { first, then, .. } => {
                first.validate()?;
                then.validate()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_schedule_round_trips_through_json() {
        let s = Schedule::Sequence {
            first: Box::new(Schedule::LinearWarmup {
                warmup_steps: 3,
                start_factor: 0.1,
            }),
            switch_at: 3,
            then: Box::new(Schedule::Product {
                factors: vec![
                    Schedule::Cosine {
                        total_steps: 10,
                        warmup_steps: 0,
                        min_factor: 0.0,
                    },
                    Schedule::StepDecay {
                        step_size: 2,
                        gamma: 0.5,
                    },
                    Schedule::InverseSqrt { warmup_steps: 1 },
                    Schedule::Constant,
                ],
            }),
        };
        let j = serde_json::to_string(&s).unwrap();
        assert_eq!(serde_json::from_str::<Schedule>(&j).unwrap(), s, "{j}");
    }
}
