// SPDX-License-Identifier: MIT
// Training end to end: a small network (examples/common/mlp.hpp) trained with each of the library's
// losses on three 2-D data sets, then sampled with the samplers of the loss's family.
//
//   family  process                      loss                               samplers
//   DDPM    vp_discrete, linear, T=1000  ddpm_eps_loss (L_simple)           DDPM ancestral, DDIM (50, 10 steps)
//   NCSN    ve_discrete, 50 levels       ncsn_loss (DSM, lambda = sigma^2)  annealed Langevin, consistent annealed
//   VP-SDE  vp_sde (0.1, 20)             sde_dsm_loss, likelihood weight    Euler-Maruyama, predictor-corrector,
//                                                                           probability flow (RK4, adaptive RK45)
//
// Every network predicts eps; the samplers convert it to what they need through the process
// (score = -eps / sigma). For each (family, data set) the program trains a model with a progress
// bar, saves the weights, loads them back into a fresh network and samples with that one. Quality
// is measured by the sliced Wasserstein distance SW_1 to held-out data, printed beside the same
// distance between independent data draws (the noise floor). It writes:
//
//   gallery_ddpm.png, gallery_ncsn.png, gallery_vpsde.png   rows: data set; columns: data, samplers
//   loss_curves.png                                         training loss of every model
//   quality.md                                              the table printed at the end
//   weights/<family>_<dataset>.bin                          the trained weights
//
//   train_2d [output directory] [--quick] [--reuse]
//     --quick   fewer training steps and samples (the README's demo; about a quarter of the time)
//     --reuse   load weights/<family>_<dataset>.bin where it exists instead of training
#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <exception>
#include <filesystem>
#include <functional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <diffusion/diffusion.hpp>
#include <diffusion/loss/ncsn_loss.hpp>
#include <diffusion/loss/sde_loss.hpp>
#include <diffusion/sampler/adaptive_ode.hpp>
#include <diffusion/sampler/annealed_langevin.hpp>
#include <diffusion/sampler/probability_flow.hpp>

#include "common/datasets.hpp"
#include "common/denoiser.hpp"
#include "common/mlp.hpp"
#include "common/plot.hpp"
#include "common/progress.hpp"
#include "common/sliced_wasserstein.hpp"
#include "common/train.hpp"
#include "common/weights_io.hpp"

namespace dm = diffusion;
namespace ex = examples;
namespace fs = std::filesystem;

namespace {

using S = float;
using tensor = Eigen::Tensor<S, 2, Eigen::RowMajor>;

// ------------------------------------------------------------------------------------------------
// Settings

struct settings {
  fs::path out_dir = "train_2d_output";
  bool quick = false;
  bool reuse = false;
  ex::mlp_config net{.data_dim = 2, .embed_dim = 16, .hidden = 64, .hidden_layers = 3, .max_frequency = 64.0};
  ex::train_options train{.steps = 8000, .batch_size = 256, .learning_rate = 5e-3, .warmup = 200};
  std::size_t train_points = 20000;  // the training set of each data set
  std::size_t eval_points = 4000;    // generated samples and held-out points per evaluation
  std::size_t floor_pairs = 5;       // independent data pairs averaged for the noise floor
  // Sampler steps (the quick variant scales them down).
  std::size_t ddpm_steps = 1000, ddim_steps = 50, ddim_few_steps = 10;
  std::size_t langevin_steps_each = 20;
  std::size_t sde_steps = 1000, pc_steps = 500, flow_steps = 50;

  void make_quick() {
    quick = true;
    train.steps = 2000;
    train.learning_rate = 1e-2;
    train.warmup = 100;
    eval_points = 2000;
    ddpm_steps = 250;
    langevin_steps_each = 5;
    sde_steps = 250;
    pc_steps = 250;
    flow_steps = 25;
  }
};

// Seeds: every random choice of the run comes from one of these Philox streams.
constexpr std::uint64_t train_data_seed = 1000, held_out_seed = 2000, floor_seed = 3000, net_seed = 4000,
                        train_seed = 5000, prior_seed = 6000, sampler_seed = 7000;

std::uint64_t seed_for(std::uint64_t base, ex::dataset d, std::size_t family) {
  return base + 10 * static_cast<std::uint64_t>(d) + 100 * family;
}

// ------------------------------------------------------------------------------------------------
// Results

struct column {
  std::string label;
  std::vector<S> samples;
  double sw = 0.0;
  double seconds = 0.0;
  double cpu_seconds = 0.0;
  std::size_t model_calls = 0;
};

struct row {
  ex::dataset data = ex::dataset::moons;
  std::vector<double> held_out;
  double floor_mean = 0.0, floor_sd = 0.0;
  std::vector<double> loss;
  double train_seconds = 0.0, train_cpu_seconds = 0.0;
  bool trained = false;
  std::vector<column> columns;        // the trained network
  std::vector<column> exact_columns;  // the exact model of the mixture (mixture row only)
};

struct family_result {
  std::string name;        // file name part
  std::string title;       // for the gallery
  std::string loss_label;  // for the table
  std::vector<row> rows;
};

/// Counts model calls, whatever the model.
template <class Model>
struct counted {
  using parameterization = typename Model::parameterization;
  Model& model;
  std::size_t calls = 0;
  void operator()(const tensor& x, double t, tensor& out) {
    ++calls;
    model(x, t, out);
  }
};

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

/// Runs `draw(model)` (a sampler call returning the final tensor) and records it as a column.
template <class Model, class Draw>
column run_sampler(const std::string& label, Model& model, const std::vector<double>& held_out, Draw&& draw) {
  counted<Model> counting{model};
  const auto start = std::chrono::steady_clock::now();
  const std::clock_t cpu_start = std::clock();
  const tensor x = draw(counting);
  column c;
  c.label = label;
  c.seconds = seconds_since(start);
  c.cpu_seconds = static_cast<double>(std::clock() - cpu_start) / CLOCKS_PER_SEC;
  c.model_calls = counting.calls;
  c.samples.assign(x.data(), x.data() + x.size());
  c.sw = ex::sliced_wasserstein(std::span<const S>(c.samples), std::span<const double>(held_out), 2);
  std::printf("    %-34s SW %.4f   %5zu model calls  %6.2f s (cpu %.2f s)\n", label.c_str(), c.sw, c.model_calls,
              c.seconds, c.cpu_seconds);
  std::fflush(stdout);
  return c;
}

tensor standard_normal(std::size_t n, std::uint64_t seed, double scale = 1.0) {
  tensor x(static_cast<Eigen::Index>(n), 2);
  dm::philox_noise(seed).fill_normal(dm::elements(x), n);
  if (scale != 1.0) x = x * static_cast<S>(scale);
  return x;
}

// ------------------------------------------------------------------------------------------------
// The three families: process, loss, samplers.

struct ddpm_family {
  static constexpr const char* name = "ddpm";
  static constexpr const char* title = "DDPM: EPS LOSS (L_SIMPLE), DISCRETE VP, T = 1000";
  static constexpr const char* loss_label = "DDPM eps-loss";
  using process_type = dm::vp_discrete;
  static process_type process() { return dm::vp_discrete::linear(1e-4, 0.02, 1000); }
  static auto loss(const process_type& p) { return dm::ddpm_eps_loss{p}; }
  static tensor prior(const settings& s, std::uint64_t seed) { return standard_normal(s.eval_points, seed); }

  template <class Model>
  static std::vector<column> sample(const settings& s, Model& model, const tensor& x_T, std::uint64_t seed,
                                    const std::vector<double>& held_out) {
    dm::eigen_backend<S, 2> be;
    const process_type p = process();
    std::vector<column> cols;
    const std::string ancestral = "DDPM ancestral, " + std::to_string(s.ddpm_steps) + " steps";
    cols.push_back(run_sampler(ancestral, model, held_out, [&](auto& m) {
      const dm::ddpm_ancestral sampler(p, dm::leading_grid(1000, s.ddpm_steps));
      return dm::sample(sampler, m, be, x_T, dm::philox_noise(seed));
    }));
    for (const std::size_t steps : {s.ddim_steps, s.ddim_few_steps}) {
      const std::string label = "DDIM eta=0, " + std::to_string(steps) + " steps";
      cols.push_back(run_sampler(label, model, held_out, [&](auto& m) {
        return dm::sample(dm::ddim(p, dm::leading_grid(1000, steps)), m, be, x_T, dm::philox_noise(seed));
      }));
    }
    return cols;
  }
};

struct ncsn_family {
  static constexpr const char* name = "ncsn";
  static constexpr const char* title = "NCSN: DSM, 50 LEVELS SIGMA 10 .. 0.01";
  static constexpr const char* loss_label = "NCSN DSM";
  using process_type = dm::ve_discrete;
  static process_type process() { return dm::ve_discrete::geometric(10.0, 0.01, 50); }
  // The network predicts eps; with Target = eps_param the loss is NCSN's objective with its weight
  // lambda = sigma^2 on the score error converted to weight 1 on the eps error (ncsn_loss.hpp).
  static auto loss(const process_type& p) { return dm::ncsn_loss<process_type, dm::eps_param>{p}; }
  static tensor prior(const settings& s, std::uint64_t seed) { return standard_normal(s.eval_points, seed, 10.0); }

  template <class Model>
  static std::vector<column> sample(const settings& s, Model& model, const tensor& x_T, std::uint64_t seed,
                                    const std::vector<double>& held_out) {
    dm::eigen_backend<S, 2> be;
    const process_type p = process();
    std::vector<column> cols;
    // Step sizes chosen with the exact model of the mixture, where both samplers then reach the
    // noise floor (mean SW_1 over 4 seeds: annealed Langevin 0.039, consistent annealed 0.041,
    // floor 0.041). Consistent annealed sampling degrades as step_lr grows towards its upper
    // limit sigma_L^2 (1 + gamma) = 1.9e-4: 0.084 at 5e-5, 0.35 at 1.2e-4.
    const std::string ald = "annealed Langevin, " + std::to_string(s.langevin_steps_each) + " x 50";
    cols.push_back(run_sampler(ald, model, held_out, [&](auto& m) {
      const dm::annealed_langevin sampler(p, {.step_lr = 3e-5, .n_steps_each = s.langevin_steps_each});
      return dm::sample(sampler, m, be, x_T, dm::philox_noise(seed));
    }));
    cols.push_back(run_sampler("consistent annealed, 50", model, held_out, [&](auto& m) {
      const dm::consistent_annealed_sampling sampler(p, {.step_lr = 2e-5});
      return dm::sample(sampler, m, be, x_T, dm::philox_noise(seed));
    }));
    return cols;
  }
};

struct vpsde_family {
  static constexpr const char* name = "vpsde";
  static constexpr const char* title = "VP SDE: DSM WITH LIKELIHOOD WEIGHTING";
  static constexpr const char* loss_label = "VP-SDE DSM, g^2 weight";
  using process_type = dm::vp_sde;
  static process_type process() { return dm::vp_sde(0.1, 20.0, 1000); }
  // lambda = g(t)^2 on the score error (Song et al. 2021b), converted to g^2 / sigma^2 on the eps error.
  static auto loss(const process_type& p) {
    return dm::sde_dsm_loss<process_type, dm::likelihood_weight, dm::eps_param>{p, {}, {.eps_t = 1e-5}};
  }
  static tensor prior(const settings& s, std::uint64_t seed) { return standard_normal(s.eval_points, seed); }

  template <class Model>
  static std::vector<column> sample(const settings& s, Model& model, const tensor& x_T, std::uint64_t seed,
                                    const std::vector<double>& held_out) {
    dm::eigen_backend<S, 2> be;
    std::vector<column> cols;
    const std::string em = "Euler-Maruyama, " + std::to_string(s.sde_steps) + " steps";
    cols.push_back(run_sampler(em, model, held_out, [&](auto& m) {
      return dm::sample(dm::euler_maruyama(process(), {.steps = s.sde_steps}), m, be, x_T, dm::philox_noise(seed));
    }));
    const std::string pc = "PC rev. diffusion + Langevin, " + std::to_string(s.pc_steps);
    cols.push_back(run_sampler(pc, model, held_out, [&](auto& m) {
      // The predictor and corrector read the process's N-step tables: N = pc_steps.
      const dm::predictor_corrector sampler(dm::vp_sde(0.1, 20.0, s.pc_steps), dm::reverse_diffusion_predictor{},
                                            dm::langevin_corrector{.snr = 0.16, .steps = 1});
      return dm::sample(sampler, m, be, x_T, dm::philox_noise(seed));
    }));
    const std::string flow = "probability flow RK4, " + std::to_string(s.flow_steps) + " steps";
    cols.push_back(run_sampler(flow, model, held_out, [&](auto& m) {
      const dm::probability_flow<process_type, dm::rk4_method> sampler(process(), {.steps = s.flow_steps});
      return dm::sample(sampler, m, be, x_T, dm::philox_noise(seed));
    }));
    cols.push_back(run_sampler("probability flow, adaptive RK45", model, held_out, [&](auto& m) {
      return dm::sample_adaptive(process(), m, be, x_T, {.rtol = 1e-4, .atol = 1e-4}).x;
    }));
    return cols;
  }
};

// ------------------------------------------------------------------------------------------------

double mean_of(const std::vector<double>& v, std::size_t from, std::size_t to) {
  double s = 0.0;
  for (std::size_t i = from; i < to; ++i) s += v[i];
  return to > from ? s / static_cast<double>(to - from) : 0.0;
}

template <class Family>
family_result run_family(const settings& s, std::size_t family_index) {
  family_result result{Family::name, Family::title, Family::loss_label, {}};
  std::printf("\n== %s: %s\n", Family::name, Family::loss_label);
  const fs::path weights_dir = s.out_dir / "weights";
  fs::create_directories(weights_dir);
  const auto process = Family::process();

  for (const ex::dataset d : ex::all_datasets) {
    row r;
    r.data = d;
    const std::string dname(ex::name(d));
    std::printf("  %s\n", dname.c_str());
    const std::vector<double> data = ex::make_dataset(d, s.train_points, seed_for(train_data_seed, d, 0));
    r.held_out = ex::make_dataset(d, s.eval_points, seed_for(held_out_seed, d, 0));
    std::vector<double> floors;
    for (std::size_t k = 0; k < s.floor_pairs; ++k)
      floors.push_back(ex::sliced_wasserstein(ex::make_dataset(d, s.eval_points, seed_for(floor_seed, d, 2 * k + 1)),
                                              ex::make_dataset(d, s.eval_points, seed_for(floor_seed, d, 2 * k + 2)),
                                              2));
    r.floor_mean = mean_of(floors, 0, floors.size());
    double var = 0.0;
    for (double f : floors) var += (f - r.floor_mean) * (f - r.floor_mean);
    r.floor_sd = std::sqrt(var / static_cast<double>(floors.size() > 1 ? floors.size() - 1 : 1));

    // The data's spread sets the network's input scaling; it is a fixed function of the training set.
    const double sigma_data = ex::rms_spread(data);
    const fs::path weights = weights_dir / (std::string(Family::name) + "_" + dname + ".bin");
    if (s.reuse && fs::exists(weights)) {
      std::printf("    reusing %s\n", weights.string().c_str());
    } else {
      ex::denoiser<typename Family::process_type, S> model(ex::mlp<S>(s.net, seed_for(net_seed, d, family_index)),
                                                           process, sigma_data);
      const auto loss = Family::loss(process);
      ex::train_options opt = s.train;
      opt.seed = seed_for(train_seed, d, family_index);
      ex::progress_bar bar("    train " + dname);
      const ex::train_report rep = ex::train(loss, model, data, opt, bar);
      r.loss = rep.loss;
      r.train_seconds = rep.seconds;
      r.train_cpu_seconds = rep.cpu_seconds;
      r.trained = true;
      const std::size_t w = std::min<std::size_t>(200, r.loss.size() / 2);
      std::printf("    trained %zu steps in %.1f s, cpu %.1f s (%.2f ms/step); loss %.4f -> %.4f "
                  "(mean of first/last %zu)\n",
                  rep.steps, rep.seconds, rep.cpu_seconds, 1e3 * rep.cpu_seconds / static_cast<double>(rep.steps),
                  mean_of(r.loss, 0, w), mean_of(r.loss, r.loss.size() - w, r.loss.size()), w);
      ex::save_weights(model.net(), weights);
    }
    // Sample from the saved file, so what is measured is what was written.
    ex::denoiser<typename Family::process_type, S> loaded(ex::load_weights<S>(weights), process, sigma_data);
    const tensor x_T = Family::prior(s, seed_for(prior_seed, d, family_index));
    const std::uint64_t sseed = seed_for(sampler_seed, d, family_index);
    r.columns = Family::sample(s, loaded, x_T, sseed, r.held_out);
    if (d == ex::dataset::mixture) {
      std::printf("    the same samplers with the exact model of the mixture:\n");
      dm::gaussian_mixture_model<typename Family::process_type> exact(ex::golden_mixture(), process);
      r.exact_columns = Family::sample(s, exact, x_T, sseed, r.held_out);
    }
    result.rows.push_back(std::move(r));
  }
  return result;
}

// ------------------------------------------------------------------------------------------------
// Pictures and table

std::string upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

void write_gallery(const settings& s, const family_result& f) {
  constexpr int panel = 240;
  constexpr double extent = 4.5;
  std::vector<std::vector<ex::image>> rows;
  for (const row& r : f.rows) {
    std::vector<ex::image> cells;
    char sub[64];
    std::snprintf(sub, sizeof sub, "HELD-OUT, FLOOR SW %.3f", r.floor_mean);
    ex::scatter_panel data(panel, extent, upper(std::string(ex::name(r.data))) + ": DATA", sub);
    data.points(std::span<const double>(r.held_out), ex::palette::data, 0.25);
    cells.push_back(data.img());
    for (const column& c : r.columns) {
      std::snprintf(sub, sizeof sub, "SW %.3f  (%zu CALLS)", c.sw, c.model_calls);
      ex::scatter_panel p(panel, extent, upper(c.label), sub);
      p.points(std::span<const S>(c.samples), ex::palette::sample, 0.25);
      cells.push_back(p.img());
    }
    rows.push_back(std::move(cells));
  }
  const fs::path path = s.out_dir / ("gallery_" + f.name + ".png");
  ex::grid(rows, f.title).save_png(path);
  std::printf("  wrote %s\n", path.string().c_str());
}

void write_loss_curves(const settings& s, const std::vector<family_result>& families) {
  std::vector<std::vector<ex::image>> rows(1);
  for (const family_result& f : families) {
    std::vector<ex::series> curves;
    std::size_t k = 0;
    for (const row& r : f.rows) {
      if (r.loss.empty()) continue;
      const std::size_t w = std::max<std::size_t>(1, r.loss.size() / 50);
      curves.push_back({upper(std::string(ex::name(r.data))), ex::moving_average(r.loss, w), ex::palette::series[k++]});
    }
    rows[0].push_back(ex::line_chart(380, 300, upper(f.loss_label), "TRAINING STEP", curves));
  }
  const fs::path path = s.out_dir / "loss_curves.png";
  ex::grid(rows, "TRAINING LOSS (MOVING AVERAGE OVER 2% OF THE RUN)").save_png(path);
  std::printf("  wrote %s\n", path.string().c_str());
}

std::string quality_table(const settings& s, const std::vector<family_result>& families) {
  std::string t;
  char line[512];
  std::snprintf(line, sizeof line,
                "Sliced Wasserstein distance SW_1 (256 projections) between %zu generated samples and %zu held-out "
                "points;\nnoise floor: SW_1 between two independent draws of %zu data points (mean +- sd over %zu "
                "pairs).\n\n",
                s.eval_points, s.eval_points, s.eval_points, s.floor_pairs);
  t += line;
  t += "| loss | data set | train s (cpu) | sampler | model calls | sample s (cpu) | SW_1 | noise floor |\n";
  t += "|---|---|---:|---|---:|---:|---:|---:|\n";
  for (const family_result& f : families)
    for (const row& r : f.rows) {
      auto add = [&](const column& c, const std::string& dname, const std::string& train_s) {
        std::snprintf(line, sizeof line, "| %s | %s | %s | %s | %zu | %.2f (%.2f) | %.4f | %.4f +- %.4f |\n",
                      f.loss_label.c_str(), dname.c_str(), train_s.c_str(), c.label.c_str(), c.model_calls, c.seconds,
                      c.cpu_seconds, c.sw, r.floor_mean, r.floor_sd);
        t += line;
      };
      char train_s[32];
      if (r.trained)
        std::snprintf(train_s, sizeof train_s, "%.1f (%.1f)", r.train_seconds, r.train_cpu_seconds);
      else
        std::snprintf(train_s, sizeof train_s, "(reused)");
      for (const column& c : r.columns) add(c, std::string(ex::name(r.data)), train_s);
      for (const column& c : r.exact_columns) add(c, std::string(ex::name(r.data)) + " (exact model)", "-");
    }
  return t;
}

int run(int argc, char** argv) {
  settings s;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--quick") == 0)
      s.make_quick();
    else if (std::strcmp(argv[i], "--reuse") == 0)
      s.reuse = true;
    else if (std::strcmp(argv[i], "--help") == 0 || std::strcmp(argv[i], "-h") == 0) {
      std::printf("usage: train_2d [output directory] [--quick] [--reuse]\n");
      return 0;
    } else if (argv[i][0] == '-') {
      std::fprintf(stderr, "train_2d: unknown option %s (try --help)\n", argv[i]);
      return 2;
    } else {
      s.out_dir = argv[i];
    }
  }
  fs::create_directories(s.out_dir);
  std::printf("train_2d%s: network %zu x %zu (SiLU, %zu-feature time embedding, %zu parameters), %zu steps of "
              "batch %zu per model, Adam lr %.0e with cosine decay; output in %s\n",
              s.quick ? " --quick" : "", s.net.hidden_layers, s.net.hidden, s.net.embed_dim,
              s.net.parameter_count(), s.train.steps, s.train.batch_size, s.train.learning_rate,
              s.out_dir.string().c_str());

  const auto start = std::chrono::steady_clock::now();
  const std::clock_t cpu_start = std::clock();
  std::vector<family_result> families;
  families.push_back(run_family<ddpm_family>(s, 0));
  families.push_back(run_family<ncsn_family>(s, 1));
  families.push_back(run_family<vpsde_family>(s, 2));

  std::printf("\n== pictures\n");
  for (const family_result& f : families) write_gallery(s, f);
  if (!s.reuse) write_loss_curves(s, families);

  const std::string table = quality_table(s, families);
  std::printf("\n== quality\n%s", table.c_str());
  const fs::path table_path = s.out_dir / "quality.md";
  if (std::FILE* f = std::fopen(table_path.string().c_str(), "w")) {
    std::fputs(table.c_str(), f);
    std::fclose(f);
  }
  std::printf("\ntotal %.1f s (cpu %.1f s); pictures, table and weights in %s\n", seconds_since(start),
              static_cast<double>(std::clock() - cpu_start) / CLOCKS_PER_SEC, s.out_dir.string().c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "train_2d: %s\n", e.what());
    return 1;
  }
}
