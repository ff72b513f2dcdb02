//! The lab's neural workloads as burn models, and the training loop `steepest bench` calls.
//!
//! * [`Mlp`]: 64 → 64 → 64 → 10 with ReLU, on digits (paths `fc1.*`, `fc2.*`, `head.*`).
//! * [`Cnn`]: two 3×3 convolutions (8 and 16 channels, ReLU), 4×4 adaptive
//!   average pooling and a linear head, on digits as 1×8×8 images.
//! * [`CharTransformer`]: a one-block pre-norm transformer (d = 32, 2 heads,
//!   context 32) predicting the next character of `data/julius_caesar_60k.txt`.
//!
//! Output layers are named `head` and embeddings `*embed*`, so the `muon`
//! recipe's default `adamw_params` patterns (`*embed*`, `*head*`) route them to
//! AdamW by burn path. All models are dropout-free: a run is a pure function of
//! its seed on the flex backend.

use std::sync::Mutex;
use std::time::Instant;

use burn::module::{Module, ModuleVisitor, Param};
use burn::nn::attention::{generate_autoregressive_mask, MhaInput, MultiHeadAttention, MultiHeadAttentionConfig};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::nn::pool::{AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig};
use burn::nn::{Embedding, EmbeddingConfig, LayerNorm, LayerNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::optim::GradientsParams;
use burn::tensor::activation::{gelu, relu};
use burn::tensor::{Device, Int, Tensor, TensorData};
use steepest::{Error, Result};

use crate::data::{self, Classification, SplitMix64, Text};
use crate::optim::SteepestOptimizer;

/// Multi-layer perceptron for 64-feature digits.
#[derive(Module, Debug)]
pub struct Mlp {
    /// First hidden layer.
    pub fc1: Linear,
    /// Second hidden layer.
    pub fc2: Linear,
    /// Output layer.
    pub head: Linear,
}

impl Mlp {
    /// `inputs → hidden → hidden → classes`.
    pub fn new(inputs: usize, hidden: usize, classes: usize, device: &Device) -> Self {
        Mlp {
            fc1: LinearConfig::new(inputs, hidden).init(device),
            fc2: LinearConfig::new(hidden, hidden).init(device),
            head: LinearConfig::new(hidden, classes).init(device),
        }
    }
    /// Logits `[batch, classes]`.
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let x = relu(self.fc1.forward(x));
        let x = relu(self.fc2.forward(x));
        self.head.forward(x)
    }
}

/// Small convolutional network for 8×8 digits.
#[derive(Module, Debug)]
pub struct Cnn {
    /// 1 → 8 channels, 3×3, same padding.
    pub conv1: Conv2d,
    /// 8 → 16 channels, 3×3, same padding.
    pub conv2: Conv2d,
    /// Pools to 4×4.
    pub pool: AdaptiveAvgPool2d,
    /// 256 → classes.
    pub head: Linear,
}

impl Cnn {
    /// For `side × side` single-channel images.
    pub fn new(classes: usize, device: &Device) -> Self {
        Cnn {
            conv1: Conv2dConfig::new([1, 8], [3, 3])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(device),
            conv2: Conv2dConfig::new([8, 16], [3, 3])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(device),
            pool: AdaptiveAvgPool2dConfig::new([4, 4]).init(),
            head: LinearConfig::new(16 * 4 * 4, classes).init(device),
        }
    }
    /// Logits `[batch, classes]` for images `[batch, 1, side, side]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let x = relu(self.conv1.forward(x));
        let x = relu(self.conv2.forward(x));
        let x = self.pool.forward(x);
        let [b, c, h, w] = x.dims();
        self.head.forward(x.reshape([b, c * h * w]))
    }
}

/// One-block character-level transformer.
#[derive(Module, Debug)]
pub struct CharTransformer {
    /// Token embedding.
    pub tok_embed: Embedding,
    /// Learned position embedding.
    pub pos_embed: Embedding,
    /// Pre-attention norm.
    pub ln1: LayerNorm,
    /// Causal self-attention.
    pub attn: MultiHeadAttention,
    /// Pre-MLP norm.
    pub ln2: LayerNorm,
    /// MLP up-projection.
    pub fc1: Linear,
    /// MLP down-projection.
    pub fc2: Linear,
    /// Final norm.
    pub ln_f: LayerNorm,
    /// Next-token logits.
    pub head: Linear,
}

impl CharTransformer {
    /// Vocabulary `vocab`, width `d`, `heads` heads, context `context`.
    pub fn new(vocab: usize, d: usize, heads: usize, context: usize, device: &Device) -> Self {
        CharTransformer {
            tok_embed: EmbeddingConfig::new(vocab, d).init(device),
            pos_embed: EmbeddingConfig::new(context, d).init(device),
            ln1: LayerNormConfig::new(d).init(device),
            attn: MultiHeadAttentionConfig::new(d, heads).with_dropout(0.0).init(device),
            ln2: LayerNormConfig::new(d).init(device),
            fc1: LinearConfig::new(d, 4 * d).init(device),
            fc2: LinearConfig::new(4 * d, d).init(device),
            ln_f: LayerNormConfig::new(d).init(device),
            head: LinearConfig::new(d, vocab).init(device),
        }
    }
    /// Logits `[batch·time, vocab]` for tokens `[batch, time]`.
    pub fn forward(&self, tokens: Tensor<2, Int>) -> Tensor<2> {
        let [b, t] = tokens.dims();
        let device = tokens.device();
        let pos = Tensor::<1, Int>::arange(0..t as i64, &device)
            .reshape([1, t])
            .repeat_dim(0, b);
        let x = self.tok_embed.forward(tokens) + self.pos_embed.forward(pos);
        let mask = generate_autoregressive_mask(b, t, &device);
        let h = self.ln1.forward(x.clone());
        let x = x + self.attn.forward(MhaInput::self_attn(h).mask_attn(mask)).context;
        let h = self.ln2.forward(x.clone());
        let x = x + self.fc2.forward(gelu(self.fc1.forward(h)));
        let x = self.ln_f.forward(x);
        let logits = self.head.forward(x);
        let [b, t, v] = logits.dims();
        logits.reshape([b * t, v])
    }
}

/// Which workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModelKind {
    /// [`Mlp`] on digits; eval metric: test accuracy.
    Mlp,
    /// [`Cnn`] on digits; eval metric: test accuracy.
    Cnn,
    /// [`CharTransformer`] on the bundled text; eval metric: held-out cross-entropy (nats/char).
    CharTransformer,
}

impl ModelKind {
    /// Parses `"mlp"`, `"cnn"` or `"char-transformer"`.
    pub fn parse(s: &str) -> Option<ModelKind> {
        match s {
            "mlp" => Some(ModelKind::Mlp),
            "cnn" => Some(ModelKind::Cnn),
            "char-transformer" | "transformer" => Some(ModelKind::CharTransformer),
            _ => None,
        }
    }
    /// The name [`ModelKind::parse`] reads.
    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Mlp => "mlp",
            ModelKind::Cnn => "cnn",
            ModelKind::CharTransformer => "char-transformer",
        }
    }
}

/// One logged point of a training run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TrainPoint {
    /// Steps taken.
    pub step: usize,
    /// Mini-batch loss of this step (before the update).
    pub train_loss: f64,
    /// Test accuracy (classification) or held-out loss (language model).
    pub eval_metric: f64,
    /// Seconds since training started (after model construction).
    pub wall_s: f64,
}

/// Data a workload trains on.
#[derive(Clone, Debug)]
pub enum TrainData {
    /// Classification rows (MLP, CNN); 8×8 images for the CNN.
    Classification(Classification),
    /// Character tokens (transformer).
    Text(Text),
}

impl TrainData {
    /// The bundled data for `kind`.
    pub fn bundled(kind: ModelKind) -> Result<TrainData> {
        Ok(match kind {
            ModelKind::Mlp | ModelKind::Cnn => TrainData::Classification(data::digits()?),
            ModelKind::CharTransformer => TrainData::Text(data::shakespeare()?),
        })
    }
}

/// Guards burn's process-global seeded RNG while a model's parameters are drawn.
static SEEDING: Mutex<()> = Mutex::new(());

/// Touches every float parameter, so lazily initialized ones are drawn now.
struct DrawAll;

impl ModuleVisitor for DrawAll {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let _ = param.val();
    }
}

/// Builds a module with burn's RNG seeded to `seed` and draws all its
/// parameters before returning. burn's RNG is process-global and parameters
/// may be drawn lazily (on first use), so both happen under one lock: a
/// concurrent run's `seed` cannot land between this run's draws. Training
/// itself then needs no lock.
pub fn init_seeded<M: Module>(device: &Device, seed: u64, f: impl FnOnce() -> M) -> M {
    let _guard = SEEDING.lock().unwrap_or_else(|e| e.into_inner());
    device.seed(seed);
    let m = f();
    m.visit(&mut DrawAll);
    m
}

/// Host `f32` values of a tensor.
pub fn to_vec<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_into_vec::<f32>().unwrap_or_default()
}

fn scalar(t: Tensor<1>) -> f64 {
    to_vec(t).first().copied().map_or(f64::NAN, f64::from)
}

const BATCH: usize = 64;
const CONTEXT: usize = 32;

/// Trains `kind` on `data` with the steepest optimizer `optimizer` (hyperparameters
/// as a JSON object) for `steps` steps on the CPU flex backend, evaluating every
/// `eval_every` steps (and after the last). Deterministic for a given `seed`.
/// Batches of 64 rows (classification; 20% of the rows held out) or 64 windows of
/// 32 characters (text; the last 10% held out). The learning rate passed to each
/// step is the optimizer's base `lr`.
///
/// Parameters are drawn under a process-wide lock (burn's RNG is global; see
/// `init_seeded`); training then runs on a one-thread rayon pool of its own so
/// flex's work splitting, and with it the float summation order, does not
/// depend on what else the machine is doing. Runs may go on concurrently.
pub fn train(
    kind: ModelKind,
    data: &TrainData,
    optimizer: &str,
    hyper_json: &str,
    steps: usize,
    seed: u64,
    eval_every: usize,
) -> Result<Vec<TrainPoint>> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .map_err(|e| Error::Spec(format!("cannot start the training thread: {e}")))?;
    pool.install(|| train_on_this_thread(kind, data, optimizer, hyper_json, steps, seed, eval_every))
}

fn train_on_this_thread(
    kind: ModelKind,
    data: &TrainData,
    optimizer: &str,
    hyper_json: &str,
    steps: usize,
    seed: u64,
    eval_every: usize,
) -> Result<Vec<TrainPoint>> {
    let device = Device::flex().autodiff();
    let hyper = steepest::hyper::hyper_from_json(hyper_json)
        .ok_or_else(|| Error::Spec(format!("hyperparameters must be a JSON object, got {hyper_json}")))?;
    let lr = steepest::registry::build(optimizer, &hyper)?.lr();
    let mut rng = SplitMix64::new(seed ^ 0x5EED);
    let eval_every = eval_every.max(1);
    let mut log = Vec::new();
    match (kind, data) {
        (ModelKind::Mlp | ModelKind::Cnn, TrainData::Classification(d)) => {
            let (tr, te) = d.split(0.2, seed);
            let f = d.features;
            let side = (f as f64).sqrt() as usize;
            if kind == ModelKind::Cnn && side * side != f {
                return Err(Error::Spec(format!("the CNN needs square images, got {f} features")));
            }
            let x_of = |c: &Classification| -> Tensor<2> {
                Tensor::from_data(TensorData::new(c.x.clone(), [c.len(), f]), &device)
            };
            let y_of =
                |c: &Classification| Tensor::<1, Int>::from_data(TensorData::new(c.y.clone(), [c.len()]), &device);
            // One value lives for the whole run: the size difference does not matter.
            #[allow(clippy::large_enum_variant)]
            enum Net {
                Mlp(Mlp),
                Cnn(Cnn),
            }
            let fwd = |net: &Net, x: Tensor<2>| match net {
                Net::Mlp(m) => m.forward(x),
                Net::Cnn(m) => {
                    let [b, _] = x.dims();
                    m.forward(x.reshape([b, 1, side, side]))
                }
            };
            let mut net = match kind {
                ModelKind::Cnn => Net::Cnn(init_seeded(&device, seed, || Cnn::new(d.classes, &device))),
                _ => Net::Mlp(init_seeded(&device, seed, || Mlp::new(f, 64, d.classes, &device))),
            };
            let mut optim = match &net {
                Net::Mlp(m) => SteepestOptimizer::new(m, optimizer, &hyper)?,
                Net::Cnn(m) => SteepestOptimizer::new(m, optimizer, &hyper)?,
            };
            let loss_fn = CrossEntropyLossConfig::new().init(&device);
            let (x_te, y_te) = (x_of(&te), te.y.clone());
            let start = Instant::now();
            for step in 1..=steps {
                let idx: Vec<usize> = (0..BATCH).map(|_| rng.below(tr.len())).collect();
                let b = tr.select(&idx);
                let loss = loss_fn.forward(fwd(&net, x_of(&b)), y_of(&b));
                let train_loss = scalar(loss.clone());
                let grads = loss.backward();
                net = match net {
                    Net::Mlp(m) => {
                        let g = GradientsParams::from_grads(grads, &m);
                        Net::Mlp(optim.step(lr, m, g))
                    }
                    Net::Cnn(m) => {
                        let g = GradientsParams::from_grads(grads, &m);
                        Net::Cnn(optim.step(lr, m, g))
                    }
                };
                if step % eval_every == 0 || step == steps {
                    let pred = fwd(&net, x_te.clone()).argmax(1);
                    let pred = pred
                        .into_data()
                        .convert::<i64>()
                        .try_into_vec::<i64>()
                        .unwrap_or_default();
                    let correct = pred.iter().zip(&y_te).filter(|(p, y)| p == y).count();
                    log.push(TrainPoint {
                        step,
                        train_loss,
                        eval_metric: correct as f64 / y_te.len().max(1) as f64,
                        wall_s: start.elapsed().as_secs_f64(),
                    });
                }
            }
        }
        (ModelKind::CharTransformer, TrainData::Text(text)) => {
            let split = text.tokens.len() * 9 / 10;
            let (tr, te) = (&text.tokens[..split], &text.tokens[split..]);
            if tr.len() <= CONTEXT + 1 || te.len() <= CONTEXT + 1 {
                return Err(Error::Spec(
                    "the text is too short for the transformer's context".into(),
                ));
            }
            let mut model = init_seeded(&device, seed, || {
                CharTransformer::new(text.vocab.len(), 32, 2, CONTEXT, &device)
            });
            let mut optim = SteepestOptimizer::new(&model, optimizer, &hyper)?;
            let loss_fn = CrossEntropyLossConfig::new().init(&device);
            let batch = |toks: &[i64], starts: &[usize]| {
                let mut x = Vec::with_capacity(starts.len() * CONTEXT);
                let mut y = Vec::with_capacity(starts.len() * CONTEXT);
                for &s in starts {
                    x.extend_from_slice(&toks[s..s + CONTEXT]);
                    y.extend_from_slice(&toks[s + 1..s + CONTEXT + 1]);
                }
                (
                    Tensor::<2, Int>::from_data(TensorData::new(x, [starts.len(), CONTEXT]), &device),
                    Tensor::<1, Int>::from_data(TensorData::new(y, [starts.len() * CONTEXT]), &device),
                )
            };
            // Fixed held-out windows.
            let eval_starts: Vec<usize> = (0..BATCH).map(|i| i * (te.len() - CONTEXT - 1) / BATCH).collect();
            let (ex, ey) = batch(te, &eval_starts);
            let start = Instant::now();
            for step in 1..=steps {
                let starts: Vec<usize> = (0..BATCH).map(|_| rng.below(tr.len() - CONTEXT - 1)).collect();
                let (x, y) = batch(tr, &starts);
                let loss = loss_fn.forward(model.forward(x), y);
                let train_loss = scalar(loss.clone());
                let grads = GradientsParams::from_grads(loss.backward(), &model);
                model = optim.step(lr, model, grads);
                if step % eval_every == 0 || step == steps {
                    let eval = scalar(loss_fn.forward(model.forward(ex.clone()), ey.clone()));
                    log.push(TrainPoint {
                        step,
                        train_loss,
                        eval_metric: eval,
                        wall_s: start.elapsed().as_secs_f64(),
                    });
                }
            }
        }
        _ => return Err(Error::Spec(format!("{} cannot train on this data", kind.name()))),
    }
    Ok(log)
}
