//! Train an MLP on the bundled digits with Muon (hidden matrices) + AdamW (biases, head).
//!
//! ```text
//! cargo run --release -p steepest-burn --example digits_mlp [path/to/digits.csv]
//! ```

use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::GradientsParams;
use burn::tensor::{Device, Int, Tensor, TensorData};
use steepest_burn::data::{data_dir, load_classification_csv, Classification, SplitMix64};
use steepest_burn::models::Mlp;
use steepest_burn::SteepestOptimizer;

fn tensors(c: &Classification, device: &Device) -> (Tensor<2>, Tensor<1, Int>) {
    let x = Tensor::from_data(TensorData::new(c.x.clone(), [c.len(), c.features]), device);
    let y = Tensor::from_data(TensorData::new(c.y.clone(), [c.len()]), device);
    (x, y)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let csv = std::env::args()
        .nth(1)
        .map_or_else(|| data_dir().join("digits.csv"), Into::into);
    let (train, test) = load_classification_csv(&csv, 16.0)?.split(0.2, 0);
    let device = Device::flex().autodiff();
    device.seed(0);

    let mut model = Mlp::new(64, 64, 10, &device);
    // The one steepest line: Muon on fc1/fc2 weights, AdamW on biases and `head.*`.
    let mut optim = SteepestOptimizer::from_json(&model, "muon", r#"{"lr": 0.02, "adamw_lr": 0.003}"#)?;
    let loss_fn = CrossEntropyLossConfig::new().init(&device);

    let mut rng = SplitMix64::new(0);
    for step in 1..=300 {
        let idx: Vec<usize> = (0..64).map(|_| rng.below(train.len())).collect();
        let (x, y) = tensors(&train.select(&idx), &device);
        let loss = loss_fn.forward(model.forward(x), y);
        if step % 50 == 0 {
            println!("step {step:4}  loss {:.4}", loss.clone().into_scalar::<f32>());
        }
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(0.02, model, grads);
    }

    let (x, y) = tensors(&test, &device);
    let correct = model
        .forward(x)
        .argmax(1)
        .squeeze_dim::<1>(1)
        .equal(y)
        .int()
        .sum()
        .into_scalar::<i64>();
    println!(
        "test accuracy {:.3} ({correct}/{})",
        correct as f64 / test.len() as f64,
        test.len()
    );
    Ok(())
}
