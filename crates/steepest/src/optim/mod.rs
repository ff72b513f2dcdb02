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
pub mod asgo;
pub mod cautious;
pub mod complex_momentum;
pub mod dp_sgd;
pub mod frugal;
pub mod lion;
pub mod mgup;
pub mod muon;
pub mod nalr;
pub mod newton_schulz;
pub mod partition;
pub mod rmsprop;
pub mod sgd;
pub mod spectral;

pub use adabound::AdaBound;
pub use adagc::AdaGc;
pub use adago::AdaGo;
pub use adagrad::Adagrad;
pub use adam::Adam;
pub use adamax::Adamax;
pub use aegd::Aegd;
pub use asgo::Asgo;
pub use cautious::{AdamKnobs, Cautious};
pub use complex_momentum::ComplexMomentum;
pub use dp_sgd::{DiceSgd, DpSgd};
pub use frugal::Frugal;
pub use lion::Lion;
pub use mgup::{HfAdamW, Mgup};
pub use muon::Muon;
pub use nalr::MuonNalr;
pub use partition::Partition;
pub use rmsprop::Rmsprop;
pub use sgd::Sgd;
