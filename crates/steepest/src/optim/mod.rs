//! The update rules, one file each. Each file's header cites its paper, gives
//! the update equations and defaults, and says where the reference
//! implementation differs from the paper.

pub mod adabound;
pub mod adagc;
pub mod adago;
pub mod adagrad;
pub mod adam;
pub mod adamax;
pub mod aegd;
pub mod cautious;
pub mod dp_sgd;
pub mod lion;
pub mod muon;
pub mod newton_schulz;
pub mod partition;
pub mod rmsprop;
pub mod sgd;

pub use adabound::AdaBound;
pub use adagc::AdaGc;
pub use adago::AdaGo;
pub use adagrad::Adagrad;
pub use adam::Adam;
pub use adamax::Adamax;
pub use aegd::Aegd;
pub use cautious::{AdamKnobs, Cautious};
pub use dp_sgd::{DiceSgd, DpSgd};
pub use lion::Lion;
pub use muon::Muon;
pub use partition::Partition;
pub use rmsprop::Rmsprop;
pub use sgd::Sgd;
