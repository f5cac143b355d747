//! `single-controller`: two controllers never act as the active one in the same epoch.
//! Raft's vote rule (one vote per voter per epoch, a majority to win) is what keeps it so;
//! a controller that acts on an older epoch (a zombie cut off from the quorum) is no
//! violation, since it can commit nothing.

use crate::check::Violation;
use crate::kafka::Obs;
use crate::sim::Time;
use std::collections::BTreeMap;

#[derive(Default)]
pub struct SingleController {
    /// Per epoch: the voter that became active in it.
    active: BTreeMap<u32, u32>,
    pub found: Vec<Violation>,
}

impl SingleController {
    pub fn observe(&mut self, at: Time, obs: &Obs) {
        if let Obs::ControllerActivated { controller, epoch } = obs {
            if let Some(&other) = self.active.get(epoch)
                && other != *controller
            {
                self.found.push(Violation {
                    at,
                    message: format!(
                        "controller-{controller} and controller-{other} both act as the active controller of epoch {epoch}"
                    ),
                    kind: "two-active-controllers",
                });
            }
            self.active.insert(*epoch, *controller);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn activated(c: &mut SingleController, at_ms: u64, controller: u32, epoch: u32) {
        c.observe(Time(at_ms * 1000), &Obs::ControllerActivated { controller, epoch });
    }

    #[test]
    fn two_voters_active_in_one_epoch_is_a_violation() {
        let mut c = SingleController::default();
        activated(&mut c, 0, 1, 1);
        activated(&mut c, 1000, 2, 1);
        assert_eq!(c.found.len(), 1);
        assert!(c.found[0].message.contains("epoch 1"));
    }

    #[test]
    fn a_new_epoch_and_the_same_voter_again_are_not() {
        let mut c = SingleController::default();
        activated(&mut c, 0, 1, 1);
        activated(&mut c, 1000, 2, 2);
        activated(&mut c, 2000, 2, 2);
        activated(&mut c, 3000, 1, 3);
        assert!(c.found.is_empty());
    }
}
