#include "cli/tool_commands.h"

#include <iostream>

#include <fmt/format.h>

#include "api/modelconvert.h"
#include "app/units.h"
#include "cli/progress_line.h"

namespace mc::cli {

namespace {

using app::human_bytes;

std::string dump(const ojson& j, int indent = 2) { return j.dump(indent, ' ', false, ojson::error_handler_t::replace); }

int fail(const Error& e, bool json) {
  if (json)
    std::cout << dump(ojson{{"ok", false}, {"error", api::error_json(e)}}) << "\n";
  else
    std::cerr << "error: " << e.render() << "\n";
  return exit_code_for(e.code);
}

std::string value_text(const ojson& v) {
  if (v.is_null()) return "(unset)";
  if (v.is_string()) return v.get<std::string>();
  return dump(v, -1);
}

// Cuts a cell to `w` characters for the tables.
std::string cell(std::string s, size_t w) {
  if (s.size() > w) s = s.substr(0, w - 1) + "~";
  return s;
}

}  // namespace

void ToolCommands::add(CLI::App& app, bool& json) {
  batch_ = app.add_subcommand("batch", "run the conversions of a job file (YAML or JSON: tasks: or models:)");
  batch_->add_option("file", batch_file_, "job file")->required();
  workers_opt_ = batch_->add_option("--max-workers", max_workers_, "tasks at the same time (default: config max_workers, 1)")
                     ->check(CLI::Range(1, 256));
  retries_opt_ = batch_->add_option("--max-retries", max_retries_, "retries of a task that failed with an I/O or network error (default: config max_retries, 1)")
                     ->check(CLI::Range(0, 100));
  batch_->add_option("--shard", shard_, "i/n: run only the tasks whose 0-based index % n == i-1 (job arrays)");
  batch_->add_option("--report", report_, "write the JSON report to this file");
  threads_opt_ = batch_->add_option("--threads", threads_, "threads per task (default: config threads, else cores / workers)");
  batch_->add_flag("--skip-disk-check", skip_disk_check_, "run even when the estimate says the disk is too small");
  batch_->add_flag("--force", force_, "replace outputs that exist");
  batch_->add_flag("--quiet", quiet_, "print only the summary");
  batch_->add_flag("--progress", progress_, "show the progress line even when stderr is not a terminal");
  batch_->add_flag("--json", json, "print the report as JSON");

  history_ = app.add_subcommand("history", "list past conversions, newest first");
  history_->add_option("--limit", limit_, "how many (default 20; 0: all)");
  history_->add_flag("--json", json, "machine-readable output");

  config_ = app.add_subcommand("config", "show or change the configuration (config.yaml, MODELCONVERT_<KEY>)");
  config_->require_subcommand(1);
  show_ = config_->add_subcommand("show", "every key, its value and where it came from");
  show_->add_flag("--json", json, "machine-readable output");
  get_ = config_->add_subcommand("get", "one key's value");
  get_->add_option("key", key_, "key (or preset.NAME)")->required();
  get_->add_flag("--json", json, "machine-readable output");
  set_ = config_->add_subcommand("set", "set a key in the config file");
  set_->add_option("key", key_, "key (or preset.NAME with a JSON/YAML map of options)")->required();
  set_->add_option("value", value_, "value")->required();
  set_->add_flag("--json", json, "machine-readable output");
  unset_ = config_->add_subcommand("unset", "remove a key from the config file");
  unset_->add_option("key", key_, "key (or preset.NAME)")->required();
  unset_->add_flag("--json", json, "machine-readable output");
  presets_ = config_->add_subcommand("list-presets", "named sets of convert options (convert --preset NAME)");
  presets_->add_flag("--json", json, "machine-readable output");
}

std::optional<int> ToolCommands::run(bool json) {
  if (batch_ && *batch_) return run_batch(json);
  if (history_ && *history_) return run_history(json);
  if (config_ && *config_) return run_config(json);
  return std::nullopt;
}

int ToolCommands::run_batch(bool json) {
  app::BatchOptions opt;
  opt.file = batch_file_;
  if (workers_opt_->count()) opt.max_workers = max_workers_;
  if (retries_opt_->count()) opt.max_retries = max_retries_;
  if (threads_opt_->count()) opt.threads = threads_;
  opt.skip_disk_check = skip_disk_check_;
  if (!report_.empty()) opt.report = report_;
  opt.force = force_;
  if (!shard_.empty()) {
    size_t i = 0, n = 0;
    char extra = 0;
    if (std::sscanf(shard_.c_str(), "%zu/%zu%c", &i, &n, &extra) != 2 || n == 0 || i == 0 || i > n)
      return fail(make_error(ErrorCode::InvalidArgument, "--shard '{}' is not i/n with 1 <= i <= n", shard_)
                      .with_hint("e.g. --shard ${SLURM_ARRAY_TASK_ID}/${SLURM_ARRAY_TASK_COUNT} (1-based)"),
                  json);
    opt.shard_index = i;
    opt.shard_count = n;
  }
  ProgressLine line(want_progress(progress_, quiet_, json));
  opt.progress = line.fn();
  opt.note = [&](const std::string& s) {
    line.clear();
    std::cerr << s << "\n";
  };
  opt.on_estimate = [&](const app::Estimate& e) {
    if (quiet_ || json) return;
    std::string free;
    for (const auto& d : e.disks) free += fmt::format("{}{} free on {}", free.empty() ? "" : ", ", human_bytes(d.free), d.where.string());
    std::cerr << fmt::format("estimated output: {} for {} task(s){}{}\n", human_bytes(e.total_bytes), e.rows.size(),
                             e.unknown ? fmt::format(" ({} not known yet)", e.unknown) : "",
                             free.empty() ? "" : "; " + free);
  };
  opt.on_task = [&](const app::TaskResult& r, size_t done, size_t total) {
    if (quiet_) return;
    line.clear();
    if (r.ok)
      std::cerr << fmt::format("[{}/{}] {}: ok in {:.1f} s{} -> {}\n", done, total, r.name, r.seconds,
                               r.attempts > 1 ? fmt::format(" ({} attempts)", r.attempts) : "", r.output);
    else
      std::cerr << fmt::format("[{}/{}] {}: FAILED after {} attempt(s): {}\n", done, total, r.name, r.attempts,
                               r.error ? r.error->render() : "");
  };
  auto rep = api::batch(opt);
  line.clear();
  if (!rep) return fail(rep.error(), json);
  const ojson report = rep->to_json();
  if (json) {
    std::cout << dump(report) << "\n";
  } else {
    fmt::print("{:<24} {:<9} {:>8} {:>9}  {}\n", "task", "status", "attempts", "seconds", "output / error");
    for (const auto& r : rep->tasks)
      fmt::print("{:<24} {:<9} {:>8} {:>9.1f}  {}\n", cell(r.name, 24), r.ok ? "ok" : "FAILED", r.attempts, r.seconds,
                 r.ok ? r.output : (r.error ? r.error->render() : ""));
    fmt::print("{} succeeded, {} failed ({} of {} tasks in the file{})\n", rep->succeeded, rep->failed, rep->tasks.size(),
               rep->tasks_in_file, rep->shard_count > 1 ? fmt::format(", shard {}/{}", rep->shard_index, rep->shard_count) : "");
  }
  // Failed tasks are reported, not a crash: 1, never the internal-error status.
  return rep->failed == 0 ? 0 : 1;
}

int ToolCommands::run_history(bool json) {
  auto h = api::history(limit_);
  if (!h) return fail(h.error(), json);
  if (json) {
    std::cout << dump(ojson{{"path", h->path.string()}, {"total", h->total}, {"damaged", h->damaged}, {"records", h->records}})
              << "\n";
    return 0;
  }
  if (h->records.empty()) {
    fmt::print("no conversions recorded yet ({})\n", h->path.string());
    return 0;
  }
  fmt::print("{:<20} {:<7} {:<10} {:>8}  {}\n", "time", "status", "format", "seconds", "input -> output");
  for (const auto& r : h->records) {
    const bool ok = r.value("status", "") == "ok";
    fmt::print("{:<20} {:<7} {:<10} {:>8.1f}  {} -> {}\n", r.value("time", ""), ok ? "ok" : "FAILED", r.value("format", ""),
               r.value("seconds", 0.0), r.value("input", ""), r.value("output", ""));
    if (!ok && r.contains("error") && r["error"].is_object())
      fmt::print("{:<20} {}\n", "", r["error"].value("message", ""));
  }
  if (h->damaged) fmt::print("({} damaged line(s) in {} skipped)\n", h->damaged, h->path.string());
  return 0;
}

int ToolCommands::run_config(bool json) {
  if (*set_ || *unset_) {
    const Status st = *set_ ? api::config_set(key_, value_) : api::config_unset(key_);
    if (!st) return fail(st.error(), json);
    auto cfg = api::load_config();
    if (!cfg) return fail(cfg.error(), json);
    auto s = cfg->get(key_);
    if (json) {
      ojson j = {{"ok", true}, {"key", key_}, {"file", cfg->file().string()}};
      if (s) {
        j["value"] = s->value;
        j["source"] = s->source;
      }
      std::cout << dump(j) << "\n";
    } else if (*set_) {
      fmt::print("{} = {} (in {})\n", key_, s ? value_text(s->value) : value_, cfg->file().string());
      if (s && s->source.rfind("env ", 0) == 0) fmt::print("note: {} overrides the file\n", s->source.substr(4));
    } else {
      fmt::print("{} removed from {}{}\n", key_, cfg->file().string(),
                 s && key_.rfind("preset.", 0) != 0 ? "; now " + value_text(s->value) + " (" + s->source + ")" : "");
    }
    return 0;
  }
  auto cfg = api::load_config();
  if (!cfg) return fail(cfg.error(), json);
  if (*get_) {
    auto s = cfg->get(key_);
    if (!s) return fail(s.error(), json);
    if (json) std::cout << dump(ojson{{"key", s->key}, {"value", s->value}, {"source", s->source}}) << "\n";
    else fmt::print("{}\n", s->value.is_object() ? dump(s->value) : value_text(s->value));
    return 0;
  }
  if (*presets_) {
    const auto ps = cfg->presets();
    if (json) {
      ojson arr = ojson::array();
      for (const auto& p : ps) arr.push_back({{"name", p.name}, {"source", p.source}, {"options", p.fields}});
      std::cout << dump(ojson{{"presets", arr}}) << "\n";
      return 0;
    }
    for (const auto& p : ps) {
      ojson opts = p.fields;
      const std::string desc = opts.value("description", "");
      opts.erase("description");
      fmt::print("{:<14} {}\n{:<14} {} [{}]\n", p.name, desc, "", dump(opts, -1), p.source);
    }
    return 0;
  }
  // show
  if (json) {
    ojson values = ojson::object();
    for (const auto& key : app::config_keys()) {
      auto s = cfg->get(key.name);
      ojson envs = ojson::array();
      std::string upper;
      for (char c : key.name) upper += char(std::toupper(static_cast<unsigned char>(c)));
      envs.push_back("MODELCONVERT_" + upper);
      if (!key.env_alias.empty()) envs.push_back(std::string(key.env_alias));
      values[std::string(key.name)] = {{"value", s->value}, {"source", s->source},
                                       {"description", std::string(key.description)}, {"env", envs}};
    }
    ojson presets = ojson::array();
    for (const auto& p : cfg->presets()) presets.push_back(p.name);
    std::cout << dump(ojson{{"file", cfg->file().string()}, {"values", values}, {"presets", presets},
                            {"warnings", cfg->warnings()}})
              << "\n";
    return 0;
  }
  fmt::print("config file: {}\n", cfg->file().string());
  fmt::print("{:<15} {:<32} {}\n", "key", "value", "from");
  for (const auto& s : cfg->all()) fmt::print("{:<15} {:<32} {}\n", s.key, value_text(s.value), s.source);
  for (const auto& w : cfg->warnings()) fmt::print("warning: {}\n", w);
  return 0;
}

}  // namespace mc::cli
