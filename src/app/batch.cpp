// Running a batch: the shard's tasks, the disk-space estimate, the worker pool with retries, the
// report (format and rules in app/batch.h).
#include "app/batch.h"

#include <sys/stat.h>

#include <atomic>
#include <cmath>
#include <cctype>
#include <chrono>
#include <map>
#include <mutex>
#include <thread>

#include "app/history.h"
#include "converter/registry.h"
#include "hub/cache.h"
#include "hub/hub.h"
#include "io/output.h"

namespace mc::app {

namespace {

using Clock = std::chrono::steady_clock;

// The nearest existing folder of a path (where its file system can be asked).
fs::path existing_ancestor(fs::path p) {
  std::error_code ec;
  p = fs::absolute(p, ec).lexically_normal();
  while (!p.empty() && !fs::exists(p, ec)) {
    if (p == p.parent_path()) break;
    p = p.parent_path();
  }
  return p;
}

std::optional<fs::path> local_or_cached(const std::string& input, const Config& cfg, std::string& why) {
  std::error_code ec;
  if (fs::exists(input, ec)) return fs::path(input);
  auto id = hub::parse_hub_id(input, false);
  if (!id || !*id) {
    why = "the input does not exist";
    return std::nullopt;
  }
  hub::HubOptions ho = hub::options_from_env();
  ho.endpoint = cfg.text("hf_endpoint");
  ho.offline = true;  // the estimate never downloads
  auto r = hub::resolve(**id, ho);
  if (!r) {
    why = "not downloaded yet";
    return std::nullopt;
  }
  return r->path;
}

}  // namespace

bool is_transient(const Error& e) { return e.code == ErrorCode::Io; }

ojson TaskResult::to_json() const {
  ojson j = {{"name", name}, {"index", index}, {"input", input}, {"format", format}, {"status", ok ? "succeeded" : "failed"},
             {"output", output}, {"attempts", attempts}, {"seconds", seconds}};
  if (error) {
    j["error"] = error->render();
    j["error_code"] = std::string(error_code_name(error->code));
    j["exit_code"] = exit_code_for(error->code);
  } else {
    j["error"] = nullptr;
  }
  return j;
}

ojson Estimate::to_json() const {
  ojson rows_j = ojson::array();
  for (const auto& r : rows) {
    ojson j = {{"name", r.name}, {"index", r.index}, {"bytes", r.known ? ojson(r.bytes) : ojson(nullptr)}};
    if (!r.note.empty()) j["note"] = r.note;
    rows_j.push_back(j);
  }
  ojson disks_j = ojson::array();
  for (const auto& d : disks) disks_j.push_back({{"where", d.where.string()}, {"needed_bytes", d.needed}, {"free_bytes", d.free}});
  return {{"total_bytes", total_bytes}, {"unknown", unknown}, {"enough", enough}, {"disks", disks_j}, {"tasks", rows_j}};
}

ojson BatchReport::to_json() const {
  ojson t = ojson::array();
  for (const auto& r : tasks) t.push_back(r.to_json());
  return {{"ok", failed == 0},
          {"file", file.string()},
          {"shard", {{"index", shard_index}, {"count", shard_count}}},
          {"tasks_in_file", tasks_in_file},
          {"max_workers", max_workers},
          {"max_retries", max_retries},
          {"estimate", estimate.to_json()},
          {"tasks", t},
          {"succeeded", succeeded},
          {"failed", failed},
          {"seconds", seconds}};
}

Result<BatchReport> run_batch(const BatchOptions& opt) {
  const auto t0 = Clock::now();
  if (opt.shard_count == 0 || opt.shard_index == 0 || opt.shard_index > opt.shard_count)
    return make_error(ErrorCode::InvalidArgument, "--shard {}/{}: the shard must be i/n with 1 <= i <= n", opt.shard_index,
                      opt.shard_count);
  const Config& cfg = *opt.config;
  auto all = MC_TRY(load_batch_file(opt.file));
  BatchReport rep;
  rep.file = opt.file;
  rep.shard_index = opt.shard_index;
  rep.shard_count = opt.shard_count;
  rep.tasks_in_file = all.size();
  rep.max_workers = std::max<uint64_t>(1, opt.max_workers.value_or(cfg.count("max_workers")));
  rep.max_retries = opt.max_retries.value_or(cfg.count("max_retries"));
  std::vector<BatchTask> tasks;
  for (auto& t : all)
    if (t.index % opt.shard_count == opt.shard_index - 1) tasks.push_back(std::move(t));
  for (const auto& t : tasks)
    for (const auto& w : t.warnings)
      if (opt.note) opt.note("warning: " + w);

  const size_t workers = std::max<size_t>(1, std::min<size_t>(rep.max_workers, tasks.size()));
  size_t threads = opt.threads.value_or(size_t(cfg.count("threads")));
  if (threads == 0) threads = std::max<size_t>(1, std::thread::hardware_concurrency() / workers);

  // Every task's request as it will run (preset, model type, config), checked before anything
  // runs; the estimate from the converter's dry-run plan.
  std::vector<converter::ConvertRequest> prepared(tasks.size());
  std::vector<std::optional<Error>> prep_error(tasks.size());
  std::map<dev_t, Estimate::Disk> disks;
  for (size_t i = 0; i < tasks.size(); ++i) {
    const auto& t = tasks[i];
    RunOptions ro;
    ro.config = &cfg;
    ro.preset = t.preset;
    ro.model_type = t.model_type;
    ro.threads_given = true;
    converter::ConvertRequest req = t.req;
    req.threads = threads;
    if (opt.force) req.force = true;
    Estimate::Row row{t.index, t.name, 0, false, ""};
    auto p = prepare(req, ro);
    if (!p) {
      prep_error[i] = p.error();
      row.note = p.error().message;
    } else {
      prepared[i] = *p;
      std::string why;
      if (auto in = local_or_cached(t.input, cfg, why)) {
        converter::ConvertRequest dry = *p;
        dry.input = *in;
        dry.dry_run = true;
        auto plan = converter::convert(dry);
        if (plan) {
          // The converter's own plan of the output (its free-space check uses the same figure).
          const ojson& pl = plan->info["plan"];
          row.bytes = pl.value("planned_output_bytes", pl.value("tensor_bytes", uint64_t(0)));
          row.known = true;
          const fs::path out = p->output ? *p->output : plan->output;
          const fs::path anc = existing_ancestor(out.parent_path());
          struct stat st {};
          if (::stat(anc.c_str(), &st) == 0) {
            auto& d = disks[st.st_dev];
            if (d.where.empty()) d.where = anc;
            d.needed += row.bytes;
          }
        } else {
          row.note = plan.error().message;
        }
      } else {
        row.note = why;
      }
    }
    if (row.known) rep.estimate.total_bytes += row.bytes;
    else ++rep.estimate.unknown;
    rep.estimate.rows.push_back(std::move(row));
  }
  for (auto& [dev, d] : disks) {
    if (auto f = io::free_bytes(d.where)) d.free = *f;
    if (d.needed + d.needed / 100 > d.free) rep.estimate.enough = false;
    rep.estimate.disks.push_back(d);
  }
  if (opt.on_estimate) opt.on_estimate(rep.estimate);
  if (!rep.estimate.enough && !opt.skip_disk_check) {
    const auto& d = *std::find_if(rep.estimate.disks.begin(), rep.estimate.disks.end(),
                                  [](const Estimate::Disk& x) { return x.needed + x.needed / 100 > x.free; });
    return make_error(ErrorCode::NoSpace, "the batch needs about {} bytes on the file system of {}, {} are free",
                      d.needed, d.where.string(), d.free)
        .with_hint("free some space, shard the batch (--shard i/n) over machines, or pass --skip-disk-check");
  }

  // The pool.
  rep.tasks.resize(tasks.size());
  std::atomic<size_t> next{0}, finished{0};
  std::mutex report_mu;
  std::optional<Progress> progress;
  if (opt.progress) {
    progress.emplace("batch", false, opt.progress, "tasks");
    progress->add_total(tasks.size());
  }
  auto work = [&] {
    for (size_t i; (i = next.fetch_add(1)) < tasks.size();) {
      const auto& t = tasks[i];
      TaskResult r;
      r.index = t.index;
      r.name = t.name;
      r.input = t.input;
      const auto start = Clock::now();
      converter::ConvertRequest used = prepared[i];
      Result<converter::ConvertReport> res = prep_error[i] ? Result<converter::ConvertReport>(*prep_error[i])
                                                           : Result<converter::ConvertReport>(Error{});
      if (!prep_error[i]) {
        RunOptions ro;
        ro.config = &cfg;
        ro.threads_given = true;
        ro.note = opt.note;
        ro.quiet_toolkit = workers > 1;
        for (r.attempts = 1;; ++r.attempts) {
          res = convert_prepared(prepared[i], ro, &used);  // one history record per task, below
          if (res || !is_transient(res.error()) || r.attempts > int(rep.max_retries)) break;
          if (opt.note)
            opt.note(fmt::format("{}: attempt {} failed ({}); retrying", t.name, r.attempts, res.error().message));
          // 0.5 s, 1 s, 2 s, ... at most 30 s between attempts.
          const double pause = std::min(30.0, opt.retry_pause_s * std::ldexp(1.0, std::min(r.attempts - 1, 16)));
          std::this_thread::sleep_for(std::chrono::duration<double>(pause));
        }
      } else {
        r.attempts = 0;
      }
      r.seconds = std::chrono::duration<double>(Clock::now() - start).count();
      r.format = used.output_format;
      r.ok = res.ok();
      if (res) r.output = res->output.string();
      else {
        r.error = res.error();
        r.output = used.output ? used.output->string() : std::string();
      }
      if (cfg.flag("history")) {
        converter::ConvertRequest rec = used;
        rec.input = t.input;
        ojson extra = {{"batch", opt.file.string()}, {"task", t.name}, {"attempts", r.attempts}};
        if (auto h = append_history(history_record("batch", rec, t.input, res, r.seconds, extra)); !h && opt.note)
          opt.note("warning: task " + t.name + " was not recorded: " + h.error().render());
      }
      {
        std::lock_guard lock(report_mu);
        rep.tasks[i] = r;
        const size_t done = ++finished;
        if (progress) progress->add_done(1);
        if (opt.on_task) opt.on_task(r, done, tasks.size());
      }
    }
  };
  std::vector<std::thread> pool;
  for (size_t w = 1; w < workers; ++w) pool.emplace_back(work);
  work();
  for (auto& th : pool) th.join();
  for (const auto& r : rep.tasks) (r.ok ? rep.succeeded : rep.failed)++;
  rep.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  if (opt.report)
    MC_CHECK(hub::write_file_atomic(*opt.report, rep.to_json().dump(2, ' ', false, ojson::error_handler_t::replace) + "\n"));
  return rep;
}

}  // namespace mc::app
