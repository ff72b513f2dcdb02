//! The update rules, one file each. Each file's header cites its paper, gives
//! the update equations and defaults, and says where the reference
//! implementation differs from the paper.

pub mod adagrad;
pub mod adam;
pub mod adamax;
pub mod rmsprop;
pub mod sgd;

pub use adagrad::Adagrad;
pub use adam::Adam;
pub use adamax::Adamax;
pub use rmsprop::Rmsprop;
pub use sgd::Sgd;
