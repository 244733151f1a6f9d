#include "formats/mlx/module_quant.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <deque>
#include <memory>
#include <mutex>
#include <string_view>
#include <vector>

#include "formats/mlx/affine.h"
#include "transforms/rows.h"

namespace mc::mlx {

namespace {

constexpr int64_t kRowBatchElems = int64_t(1) << 14;
constexpr std::string_view kWeight = ".weight";

// Row states of the kept scales/biases.
enum : uint8_t { kEmpty = 0, kFilling = 1, kReady = 2 };

class Module {
 public:
  Module(const TensorEntry& e, DType fdt, int bits, int group, std::shared_ptr<ParamBudget> budget)
      : src_(e, fdt), fdt_(fdt), bits_(bits), group_(group), budget_(std::move(budget)) {
    cols_ = src_.cols();
    rows_ = src_.rows();
    groups_ = cols_ / group_;
    words_ = packed_words(cols_, bits_);
    param_row_bytes_ = uint64_t(groups_) * dtype_size(fdt_);
    kept_bytes_ = int64_t(2 * uint64_t(rows_) * param_row_bytes_);
    if (budget_) state_ = std::make_unique<std::atomic<uint8_t>[]>(size_t(rows_));
  }
  ~Module() { drop_kept(); }

  int64_t rows() const { return rows_; }
  int64_t words() const { return words_; }
  int64_t groups() const { return groups_; }
  uint64_t param_row_bytes() const { return param_row_bytes_; }

  // Packed rows [r0, r0 + n) into dst; the scales and biases computed on the way are kept.
  Status weight_rows(int64_t r0, int64_t n, std::byte* dst) {
    const uint64_t w_row = uint64_t(words_) * 4;
    packed_.resize(size_t(words_));
    // Straight into dst when its words are aligned (they are in the writer's buffers).
    const bool direct = reinterpret_cast<uintptr_t>(dst) % alignof(uint32_t) == 0;
    return for_batches(r0, n, [&](int64_t row, const float* w) {
      std::byte* out = dst + uint64_t(row - r0) * w_row;
      uint32_t* words = direct ? reinterpret_cast<uint32_t*>(out) : packed_.data();
      quantize_row(w, cols_, bits_, group_, words, sc_.data(), bi_.data(), scratch_.data());
      if (!direct) std::memcpy(out, packed_.data(), w_row);
      keep(row);
    });
  }

  // Scale (want_scales) or bias rows [r0, r0 + n) into dst: kept ones are copied, the others
  // computed from the source rows (and kept for the sibling tensor).
  Status param_rows(bool want_scales, int64_t r0, int64_t n, std::byte* dst) {
    const std::byte* kept = want_scales ? scales_.get() : biases_.get();
    int64_t r = r0;
    while (r < r0 + n) {
      if (ready(r)) {
        std::memcpy(dst + uint64_t(r - r0) * param_row_bytes_, kept + uint64_t(r) * param_row_bytes_,
                    param_row_bytes_);
        ++r;
        continue;
      }
      int64_t end = r + 1;  // a run of rows not kept yet
      while (end < r0 + n && !ready(end)) ++end;
      MC_CHECK(for_batches(r, end - r, [&](int64_t row, const float* w) {
        for (int64_t g = 0; g < groups_; ++g) {
          const GroupParams p = group_params(w + g * group_, group_, bits_);
          sc_[size_t(g)] = p.scale;
          bi_[size_t(g)] = p.bias;
        }
        from_f32(want_scales ? sc_.data() : bi_.data(), fdt_, dst + uint64_t(row - r0) * param_row_bytes_,
                 size_t(groups_));
        keep(row);
      }));
      r = end;
    }
    return {};
  }

  // The writer is done with `n` rows of one of the three tensors (0 weight, 1 scales, 2 biases):
  // once all three are written, nothing reads or fills the kept rows any more; they go, and
  // their bytes return to the budget.
  void written(int which, int64_t n) {
    written_[which].fetch_add(n);
    for (const auto& w : written_)
      if (w.load() < rows_) return;
    drop_kept();
  }

 private:
  // Reads source rows [r0, r0 + n) in batches and calls f(row, values) for each.
  template <typename F>
  Status for_batches(int64_t r0, int64_t n, F&& f) {
    // A few rows at a time (64 KiB of f32), so they are still in the core's cache when quantized.
    const int64_t batch = std::max<int64_t>(1, kRowBatchElems / std::max<int64_t>(cols_, 1));
    thread_local std::vector<float> buf;
    sc_.resize(size_t(groups_));
    bi_.resize(size_t(groups_));
    scratch_.resize(size_t(cols_));
    for (int64_t b = 0; b < n; b += batch) {
      const int64_t k = std::min(batch, n - b);
      buf.resize(size_t(k * cols_));
      MC_CHECK(src_.read(r0 + b, k, buf.data()));
      for (int64_t i = 0; i < k; ++i) f(r0 + b + i, buf.data() + i * cols_);
    }
    return {};
  }

  bool ready(int64_t row) const {
    return state_ && state_[size_t(row)].load(std::memory_order_acquire) == kReady;
  }

  // Keeps this row's scales and biases (just computed into sc_/bi_) unless another thread does.
  void keep(int64_t row) {
    if (!state_) return;
    // The budget is taken and the rows allocated by the first row kept, not when the module is
    // made (every module of the model is made before the first is written): the budget then
    // counts the modules being written, and memory freed by a written module holds the next
    // one's rows instead of the heap growing by every module's. Not zero-filled: a kept row is
    // read only once its state says it was written.
    std::call_once(allocated_, [&] {
      if (!budget_->take(kept_bytes_)) {
        refused_ = true;
        return;
      }
      scales_.reset(new std::byte[uint64_t(rows_) * param_row_bytes_]);
      biases_.reset(new std::byte[uint64_t(rows_) * param_row_bytes_]);
    });
    if (refused_) return;  // written inside call_once, which orders it before this read
    uint8_t expect = kEmpty;
    if (!state_[size_t(row)].compare_exchange_strong(expect, kFilling, std::memory_order_acq_rel)) return;
    from_f32(sc_.data(), fdt_, scales_.get() + uint64_t(row) * param_row_bytes_, size_t(groups_));
    from_f32(bi_.data(), fdt_, biases_.get() + uint64_t(row) * param_row_bytes_, size_t(groups_));
    state_[size_t(row)].store(kReady, std::memory_order_release);
  }

  void drop_kept() {
    bool expect = false;
    if (!state_ || !dropped_.compare_exchange_strong(expect, true)) return;
    if (!scales_) return;  // nothing was kept: the budget was never taken
    scales_.reset();
    biases_.reset();
    budget_->give(kept_bytes_);
  }

  transforms::F32Rows src_;
  DType fdt_;
  int bits_, group_;
  std::shared_ptr<ParamBudget> budget_;
  int64_t cols_ = 0, rows_ = 0, groups_ = 0, words_ = 0, kept_bytes_ = 0;
  uint64_t param_row_bytes_ = 0;
  std::unique_ptr<std::byte[]> scales_, biases_;  // kept rows, in the float dtype
  std::once_flag allocated_;
  bool refused_ = false;  // the budget refused kept_bytes_: nothing is kept (set inside allocated_)
  std::unique_ptr<std::atomic<uint8_t>[]> state_;
  std::array<std::atomic<int64_t>, 3> written_{};
  std::atomic<bool> dropped_{false};
  // Per-thread scratch of one row.
  static thread_local std::vector<float> sc_, bi_;
  static thread_local std::vector<uint8_t> scratch_;
  static thread_local std::vector<uint32_t> packed_;
};

thread_local std::vector<float> Module::sc_, Module::bi_;
thread_local std::vector<uint8_t> Module::scratch_;
thread_local std::vector<uint32_t> Module::packed_;

Shape with_last(Shape s, int64_t last) {
  s.back() = last;
  return s;
}

}  // namespace

std::array<TensorEntry, 3> quantized_module(const TensorEntry& e, DType fdt, int bits, int group,
                                            std::shared_ptr<ParamBudget> budget) {
  const std::string prefix = e.name.substr(0, e.name.size() - kWeight.size());
  auto m = std::make_shared<Module>(e, fdt, bits, group, std::move(budget));
  const uint64_t w_row = uint64_t(m->words()) * 4, p_row = m->param_row_bytes();
  TensorEntry w{
      prefix + ".weight", DType::U32, with_last(e.shape, m->words()),
      transforms::make_rows_data(
          m->rows(), w_row, [m](int64_t r0, int64_t n, std::byte* dst) { return m->weight_rows(r0, n, dst); },
          [m](int64_t, int64_t n) { m->written(0, n); })};
  auto params = [&](bool scales) {
    return transforms::make_rows_data(
        m->rows(), p_row,
        [m, scales](int64_t r0, int64_t n, std::byte* dst) { return m->param_rows(scales, r0, n, dst); },
        [m, scales](int64_t, int64_t n) { m->written(scales ? 1 : 2, n); });
  };
  TensorEntry s{prefix + ".scales", fdt, with_last(e.shape, m->groups()), params(true)};
  TensorEntry b{prefix + ".biases", fdt, with_last(e.shape, m->groups()), params(false)};
  return {std::move(w), std::move(s), std::move(b)};
}

std::vector<size_t> module_pull_order(const TensorStore& store, size_t lag) {
  std::vector<size_t> order;
  order.reserve(store.size());
  std::deque<size_t> later;  // store index of each deferred module's scales (biases follow)
  auto is_module = [&](size_t i) {
    if (i + 2 >= store.size() || store[i].dtype != DType::U32 || !store[i].name.ends_with(kWeight)) return false;
    const std::string_view prefix = std::string_view(store[i].name).substr(0, store[i].name.size() - kWeight.size());
    const auto is = [&](size_t k, std::string_view suffix) {
      const std::string& n = store[k].name;
      return n.size() == prefix.size() + suffix.size() && n.starts_with(prefix) && n.ends_with(suffix);
    };
    return is(i + 1, ".scales") && is(i + 2, ".biases");
  };
  for (size_t i = 0; i < store.size(); ++i) {
    order.push_back(i);
    if (!is_module(i)) continue;
    later.push_back(i + 1);
    i += 2;
    if (later.size() > lag) {
      order.push_back(later.front());
      order.push_back(later.front() + 1);
      later.pop_front();
    }
  }
  for (size_t k : later) {
    order.push_back(k);
    order.push_back(k + 1);
  }
  return order;
}

}  // namespace mc::mlx
