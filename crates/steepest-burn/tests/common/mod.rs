//! Shared test helpers: a small MLP on digits, deterministic batches, parameter snapshots.
#![allow(dead_code)]

use burn::module::{Module, ModuleVisitor, Param};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::GradientsParams;
use burn::tensor::{Device, Int, Tensor, TensorData};
use steepest_burn::data::{digits, Classification, SplitMix64};
use steepest_burn::models::Mlp;

pub fn device() -> Device {
    Device::flex().autodiff()
}

/// The digits rows, loaded once per test.
pub fn data() -> Classification {
    digits().expect("data/digits.csv")
}

/// A small MLP (64 → 32 → 32 → 10), seeded.
pub fn mlp(seed: u64) -> Mlp {
    let d = device();
    // burn's seeded RNG is global and parameters may be drawn lazily (a clone of an
    // undrawn model draws again, later, from whatever state the RNG is in): build and
    // draw everything under the library's seeding lock.
    steepest_burn::models::init_seeded(&d, seed, || Mlp::new(64, 32, 10, &d))
}

/// Gradients of the cross-entropy on batch `step` (a fixed sequence of 32-row batches).
pub fn grads(model: &Mlp, data: &Classification, step: u64) -> GradientsParams {
    let d = device();
    let mut rng = SplitMix64::new(1000 + step);
    let idx: Vec<usize> = (0..32).map(|_| rng.below(data.len())).collect();
    let b = data.select(&idx);
    let x = Tensor::<2>::from_data(TensorData::new(b.x.clone(), [b.len(), 64]), &d);
    let y = Tensor::<1, Int>::from_data(TensorData::new(b.y.clone(), [b.len()]), &d);
    let loss = CrossEntropyLossConfig::new().init(&d).forward(model.forward(x), y);
    GradientsParams::from_grads(loss.backward(), model)
}

#[derive(Default)]
struct Snap {
    path: Vec<String>,
    out: Vec<(String, Vec<f32>)>,
}

impl ModuleVisitor for Snap {
    fn enter_module(&mut self, name: &str, _: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _: &str, _: &str) {
        self.path.pop();
    }
    fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
        let v = p.val().into_data().convert::<f32>().try_into_vec::<f32>().unwrap();
        self.out.push((self.path.join("."), v));
    }
}

/// Every float parameter by burn path.
pub fn snapshot<M: Module>(m: &M) -> Vec<(String, Vec<f32>)> {
    let mut s = Snap::default();
    m.visit(&mut s);
    s.out
}

/// Largest |a - b| over all parameters, and largest |b| (for a relative figure).
pub fn max_diff(a: &[(String, Vec<f32>)], b: &[(String, Vec<f32>)]) -> (f64, f64) {
    let (mut d, mut s) = (0.0f64, 0.0f64);
    for ((na, va), (nb, vb)) in a.iter().zip(b) {
        assert_eq!(na, nb);
        for (x, y) in va.iter().zip(vb) {
            d = d.max(f64::from((x - y).abs()));
            s = s.max(f64::from(y.abs()));
        }
    }
    (d, s)
}

/// Bitwise equality of two snapshots.
pub fn bits(a: &[(String, Vec<f32>)]) -> Vec<(String, Vec<u32>)> {
    a.iter()
        .map(|(n, v)| (n.clone(), v.iter().map(|x| x.to_bits()).collect()))
        .collect()
}
