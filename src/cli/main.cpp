// modelconvert command line: parses arguments, calls the API, prints tables or JSON.
#include <malloc.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cctype>
#include <cstdio>
#include <iostream>
#include <new>
#include <system_error>

#include "api/modelconvert.h"
#include "app/units.h"
#include "cli/progress_line.h"
#include "cli/tool_commands.h"
#include "io/output.h"

namespace {

using mc::ojson;
using mc::cli::ProgressLine;
using mc::cli::want_progress;

using mc::app::parse_size;
using mc::app::human_bytes;

int fail(const mc::Error& e, bool json) {
  if (json)
    std::cout << ojson{{"ok", false}, {"error", mc::api::error_json(e)}}.dump(2, ' ', false, ojson::error_handler_t::replace) << "\n";
  else
    std::cerr << "error: " << e.render() << "\n";
  return mc::exit_code_for(e.code);
}

void print_inspect(const ojson& j) {
  fmt::print("path:          {}\n", j.value("path", ""));
  fmt::print("format:        {}\n", j.value("format", "?"));
  auto print_details = [&] {
    if (!j.contains("details") || !j["details"].is_object()) return;
    // Format-specific facts (e.g. Megatron: iteration, TP/PP, naming): scalars, one per line.
    for (auto it = j["details"].begin(); it != j["details"].end(); ++it)
      if (it.value().is_primitive())
        fmt::print("{:<14} {}\n", it.key() + ":", it.value().is_string() ? it.value().get<std::string>()
                                                                         : it.value().dump(-1, ' ', false, ojson::error_handler_t::replace));
  };
  if (!j.value("readable", false)) {
    fmt::print("note:          {}\n", j.value("note", ""));
    print_details();
    return;
  }
  if (j.contains("architecture")) fmt::print("architecture:  {}\n", j["architecture"].get<std::string>());
  if (j.contains("hyper_parameters")) {
    const auto& h = j["hyper_parameters"];
    fmt::print("hyper-params:  layers {}, hidden {}, ffn {}, heads {} (kv {}), head_dim {}, vocab {}, tied {}\n",
               h["num_layers"].get<int64_t>(), h["hidden_size"].get<int64_t>(),
               h["intermediate_size"].get<int64_t>(), h["num_heads"].get<int64_t>(),
               h["num_kv_heads"].get<int64_t>(), h["head_dim"].get<int64_t>(), h["vocab_size"].get<int64_t>(),
               h["tie_word_embeddings"].get<bool>());
  }
  fmt::print("tensors:       {} ({} parameters, {})\n", j["tensors"].get<uint64_t>(),
             j["parameters"].get<uint64_t>(), human_bytes(j["tensor_bytes"].get<uint64_t>()));
  std::string dt;
  for (auto it = j["dtypes"].begin(); it != j["dtypes"].end(); ++it)
    dt += fmt::format("{}{} ({} params)", dt.empty() ? "" : ", ", it.key(), it.value().get<uint64_t>());
  fmt::print("dtypes:        {}\n", dt);
  if (j.contains("shards") && !j["shards"].empty()) {
    std::string s;
    for (const auto& f : j["shards"]) s += (s.empty() ? "" : ", ") + f.get<std::string>();
    fmt::print("weight files:  {}\n", s);
  }
  std::string tok;
  for (const auto& f : j["tokenizer_files"]) tok += (tok.empty() ? "" : ", ") + f.get<std::string>();
  fmt::print("tokenizer:     {}\n", tok.empty() ? "(none)" : tok);
  print_details();
  if (j.contains("targets")) {
    std::string t;
    for (const auto& f : j["targets"]) t += (t.empty() ? "" : ", ") + f.get<std::string>();
    fmt::print("convertible to: {}\n", t);
  }
}

int run_cli(int argc, char** argv) {
  CLI::App app{"modelconvert: convert, quantize, validate and check LLM checkpoints"};
  app.require_subcommand(1);
  bool json = false;

  // convert
  mc::api::ConvertRequest req;
  bool force_progress = false;
  std::string path_for_tok;
  std::string input, out, dtype, max_shard, quant_config, fake_cfg, tokenizer;
  auto* conv = app.add_subcommand("convert", "convert a model to another format");
  conv->add_option("input", input, "model directory or file (or a config.json with --fake-weight)")->required();
  conv->add_option("output_format", req.output_format, "target format (see `list formats`; optional with --preset)");
  conv->add_option("-o,--output", out, "output path (default: derived from the input and the format)");
  conv->add_option("--from", req.input_format, "input format (default: detected)");
  conv->add_option("--dtype", dtype, "cast float weights: fp32 | fp16 | bf16");
  mc::api::ToolOptions tool;
  conv->add_option("--model-type", tool.model_type,
                   "family (auto | llama | mistral | qwen2 | minicpm | gpt2) or task (text-generation, image-classification, ...)");
  auto* conv_threads = conv->add_option("--threads", req.threads, "worker threads (default: config threads, else all cores)");
  conv->add_option("--preset", tool.preset, "named options (see `config list-presets`)");
  conv->add_option("--max-shard-size", max_shard, "largest weights file, e.g. 2GB (default 5GB)");
  conv->add_option("--weights-format", req.write.weights_format, "hf output weights: safetensors | bin");
  conv->add_option("--quant", req.write.quant, "quantization (see `list quantizations`)");
  conv->add_option("--quant-config,--quantization-config", quant_config, "format-specific quantization settings (JSON)");
  conv->add_flag("--fake-weight", req.fake_weight, "replace the weights with fake ones (zeros by default)");
  conv->add_option("--fake-weight-config", fake_cfg, "tensor shapes for --fake-weight (JSON or YAML)");
  conv->add_option("--fake-weight-init", req.fake_weight_init, "zeros | random");
  conv->add_option("--seed", req.seed, "seed for --fake-weight-init random");
  conv->add_flag("--mup2llama", req.mup2llama, "fold MiniCPM muP scales into a plain Llama");
  conv->add_option("--tokenizer", tokenizer, "tokenizer file or directory to attach (llama2.c, Megatron input)");
  int64_t vocab_size = 0;
  conv->add_option("--vocab-size", vocab_size, "true vocabulary size of a padded (Megatron) checkpoint");
  std::string calibration;
  int64_t calib_samples = 0, seq_len = 0;
  conv->add_option("--calibration", calibration, "gptq/awq calibration text: plain text or JSONL {\"text\": ...} (default: built-in corpus)");
  conv->add_option("--calibration-samples", calib_samples, "gptq/awq: calibration sequences (default 64)")->check(CLI::Range(1, 100000));
  conv->add_option("--seq-len", seq_len, "gptq/awq: tokens per calibration sequence (default 256)")->check(CLI::Range(2, 65536));
  conv->add_option("--tp", req.write.tensor_parallel, "tensor-parallel size of Megatron output (default 1)")->check(CLI::Range(1, 512));
  conv->add_option("--pp", req.write.pipeline_parallel, "pipeline-parallel size of Megatron output (default 1)")->check(CLI::Range(1, 512));
  conv->add_option("--megatron-format", req.write.naming, "Megatron tensor names: legacy | mcore")
      ->check(CLI::IsMember({"legacy", "mcore"}));
  conv->add_flag("--force", req.force, "replace an existing output");
  conv->add_flag("--quiet", req.write.quiet, "print nothing but errors");
  conv->add_flag("--progress", force_progress, "show the progress line even when stderr is not a terminal");
  conv->add_flag("--dry-run", req.dry_run, "plan only: print what would be written");
  bool sync = false;
  conv->add_flag("--sync", sync, "fsync the output before renaming it into place (survives power loss)");
  conv->add_flag("--json", json, "machine-readable result");
  bool conv_check = false;
  conv->add_flag("--check", conv_check, "after converting, run the output and compare it with the source");

  mc::converter::CheckRequest creq;
  std::string ids_text, compare_path, dump_path, prompt;
  auto* chk = app.add_subcommand("check", "run a model in the reference runtime; compare it with its source");
  chk->add_option("model", creq.model, "model directory or file")->required();
  chk->add_option("--prompt", prompt, "prompt text (needs the model's tokenizer; default \"Once upon a time\")");
  chk->add_option("--ids", ids_text, "prompt token ids, e.g. 1,450,4996");
  chk->add_option("--max-new-tokens", creq.max_new_tokens, "greedy tokens to generate (default 16)");
  chk->add_option("--compare", compare_path, "source model: compare logits, top-1 and KL; PASS or FAIL");
  chk->add_option("--dump-logits", dump_path, "write prompt_ids, logits_all and greedy_ids as JSON");
  auto* chk_threads = chk->add_option("--threads", creq.threads, "worker threads (default: config threads, else all cores)");
  chk->add_flag("--json", json, "machine-readable output");
  bool check_quiet = false;
  chk->add_flag("--quiet", check_quiet, "no progress line");
  chk->add_flag("--progress", force_progress, "show the progress line even when stderr is not a terminal");

  std::string tok_text;
  bool no_bos = false;
  auto* tokc = app.add_subcommand("tokenize", "token ids and pieces of a text");
  tokc->add_option("path", path_for_tok, "model directory, GGUF file, tokenizer.json or tokenizer.model")->required();
  tokc->add_option("--text", tok_text, "text to tokenize")->required();
  tokc->add_flag("--no-bos", no_bos, "do not add the BOS/EOS tokens the tokenizer would add");
  tokc->add_flag("--json", json, "machine-readable output");

  std::string path, from = "auto";
  auto* insp = app.add_subcommand("inspect", "show format, architecture, dtypes, parameters, files");
  insp->add_option("input", path, "model directory or file")->required();
  insp->add_option("--from", from, "input format (default: detected)");
  insp->add_flag("--json", json, "machine-readable output");

  auto* val = app.add_subcommand("validate", "check a model's structure, sizes and metadata");
  val->add_option("input", path, "model directory or file")->required();
  val->add_option("--from", from, "input format (default: detected)");
  val->add_flag("--json", json, "machine-readable output");

  std::string what;
  auto* list = app.add_subcommand("list", "list formats, quantizations or architectures");
  list->add_option("what", what, "formats | quantizations | architectures")
      ->required()
      ->check(CLI::IsMember({"formats", "quantizations", "architectures"}));
  list->add_flag("--json", json, "machine-readable output");

  auto* ver = app.add_subcommand("version", "print the version");
  ver->add_flag("--json", json, "machine-readable output");

  mc::cli::ToolCommands tools;
  tools.add(app, json);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    // Every argument error is an InvalidArgument (exit 2, README's table), whatever CLI11's own
    // number for it is.
    mc::Error err = mc::make_error(mc::ErrorCode::InvalidArgument, "{}", e.what());
    const CLI::App* sub = nullptr;
    for (const CLI::App* s : app.get_subcommands()) sub = s;
    err.hint = sub ? fmt::format("run `modelconvert {} --help` for its options", sub->get_name())
                   : "run `modelconvert --help` for the commands";
    return fail(err, json);
  }

  if (auto rc = tools.run(json)) return *rc;
  // Notices (cache fallbacks, resumed downloads) on stderr, never between a JSON document's lines.
  auto note = [](const std::string& s) { std::cerr << "note: " << s << "\n"; };

  if (*conv) {
    mc::io::set_sync_on_close(sync);
    if (req.output_format.empty() && tool.preset.empty()) {
      mc::Error e = mc::make_error(mc::ErrorCode::InvalidArgument, "convert needs an output format or --preset");
      e.hint = "run `modelconvert convert --help` for its options";
      return fail(e, json);
    }
    req.input = input;
    if (!out.empty()) req.output = out;
    if (!dtype.empty()) {
      auto d = mc::dtype_from_name(dtype);
      if (!d) {
        mc::Error e = mc::make_error(mc::ErrorCode::InvalidArgument, "unknown --dtype '{}'", dtype);
        e.hint = "use fp32, fp16 or bf16";
        return fail(e, json);
      }
      req.write.dtype = d;
    }
    if (!max_shard.empty()) {
      auto s = parse_size(max_shard);
      if (!s || *s == 0) {
        mc::Error e = mc::make_error(mc::ErrorCode::InvalidArgument, "cannot read --max-shard-size '{}'", max_shard);
        e.hint = "write it like 2GB, 500MB or 1GiB";
        return fail(e, json);
      }
      req.write.max_shard_bytes = *s;
    }
    if (!quant_config.empty()) {
      req.write.quant_config = ojson::parse(quant_config, nullptr, false);
      if (req.write.quant_config.is_discarded()) {
        mc::Error e = mc::make_error(mc::ErrorCode::InvalidArgument, "--quant-config is not valid JSON");
        return fail(e, json);
      }
    }
    if (!fake_cfg.empty()) req.fake_weight_config = fake_cfg;
    if (!tokenizer.empty()) req.tokenizer = tokenizer;
    if (vocab_size > 0) req.vocab_size = vocab_size;
    if (!calibration.empty()) req.write.calibration = calibration;
    if (calib_samples > 0) req.write.calibration_samples = calib_samples;
    if (seq_len > 0) req.write.seq_len = seq_len;
    ProgressLine line(want_progress(force_progress, req.write.quiet, json));
    req.progress = line.fn();
    tool.download_progress = line.fn();
    tool.threads_given = conv_threads->count() > 0;
    tool.note = [&](const std::string& s) {
      line.clear();
      if (!req.write.quiet) std::cerr << "note: " << s << "\n";
    };
    auto r = mc::api::convert(req, tool);
    line.clear();
    if (!r) return fail(r.error(), json);
    if (conv_check) {
      mc::converter::CheckRequest cr;
      cr.model = r->output;
      cr.compare = req.input;
      if (r->info.contains("hub")) cr.compare = r->info["hub"]["snapshot"].get<std::string>();
      cr.threads = req.threads;
      cr.max_new_tokens = 8;
      ProgressLine cline(want_progress(force_progress, req.write.quiet, json));
      cr.progress = cline.fn();
      auto c = mc::api::check(cr);
      cline.clear();
      if (!c) return fail(c.error(), json);
      if (json) {
        auto j = r->to_json();
        j["check"] = c->to_json();
        std::cout << j.dump(2, ' ', false, ojson::error_handler_t::replace) << "\n";
      } else {
        fmt::print("wrote {} -> {}\ncheck: {}\n{}\n", r->output_format, r->output.string(), c->comparison.dump(-1, ' ', false, ojson::error_handler_t::replace),
                   c->pass ? "PASS" : "FAIL");
      }
      return c->pass ? 0 : mc::exit_code_for(mc::ErrorCode::CheckFailed);
    }
    if (json) {
      std::cout << r->to_json().dump(2, ' ', false, ojson::error_handler_t::replace) << "\n";
    } else if (!req.write.quiet) {
      if (r->dry_run)
        fmt::print("would write {} tensors ({}) as {} to {}\n", r->tensors, human_bytes(r->tensor_bytes),
                   r->output_format, r->output.string());
      else
        fmt::print("wrote {} ({} tensors, {}) in {:.2f} s -> {}\n", r->output_format, r->tensors,
                   human_bytes(r->tensor_bytes), r->seconds, r->output.string());
      for (const auto& w : r->validation.warnings) fmt::print("warning: {}\n", w);
    }
    return 0;
  }
  if (*chk) {
    if (!ids_text.empty()) {
      std::string cur;
      for (char c : ids_text + ",") {
        if (c == ',') {
          if (!cur.empty()) {
            try {
              creq.ids.push_back(int32_t(std::stol(cur)));
            } catch (...) {
              return fail(mc::make_error(mc::ErrorCode::InvalidArgument, "--ids: '{}' is not a number", cur), json);
            }
          }
          cur.clear();
        } else if (c != ' ') {
          cur += c;
        }
      }
    }
    if (!prompt.empty()) creq.prompt = prompt;
    if (!compare_path.empty()) creq.compare = compare_path;
    if (!dump_path.empty()) creq.dump_logits = dump_path;
    ProgressLine line(want_progress(force_progress, check_quiet, json));
    creq.progress = line.fn();
    mc::api::ToolOptions ctool;
    ctool.download_progress = line.fn();
    ctool.threads_given = chk_threads->count() > 0;
    ctool.note = note;
    auto r = mc::api::check(creq, ctool);
    line.clear();
    if (!r) return fail(r.error(), json);
    if (json) {
      std::cout << r->to_json().dump(2, ' ', false, ojson::error_handler_t::replace) << "\n";
    } else {
      std::string ids;
      for (auto id : r->prompt_ids) ids += (ids.empty() ? "" : ",") + std::to_string(id);
      fmt::print("prompt ids:  {}\n", ids);
      ids.clear();
      for (auto id : r->greedy_ids) ids += (ids.empty() ? "" : ",") + std::to_string(id);
      fmt::print("greedy ids:  {}\n", ids);
      if (!r->greedy_text.empty()) fmt::print("greedy text: {}\n", r->greedy_text);
      if (r->compared) {
        fmt::print("compare:     {}\nrule:        {}\n{}\n", r->comparison.dump(-1, ' ', false, ojson::error_handler_t::replace), r->rule, r->pass ? "PASS" : "FAIL");
      }
    }
    if (r->compared && !r->pass) return mc::exit_code_for(mc::ErrorCode::CheckFailed);
    return 0;
  }
  if (*tokc) {
    auto r = mc::api::tokenize(path_for_tok, tok_text, !no_bos);
    if (!r) return fail(r.error(), json);
    if (json) {
      std::cout << ojson{{"ids", r->ids}, {"pieces", r->pieces}}.dump(-1, ' ', false, ojson::error_handler_t::replace) << "\n";
    } else {
      for (size_t i = 0; i < r->ids.size(); ++i) fmt::print("{:>8}  {}\n", r->ids[i], r->pieces[i]);
    }
    return 0;
  }
  if (*insp) {
    mc::api::ToolOptions itool;
    itool.note = note;
    auto r = mc::api::inspect(path, from, itool);
    if (!r) return fail(r.error(), json);
    if (json) {
      std::cout << r->dump(2, ' ', false, ojson::error_handler_t::replace) << "\n";
    } else {
      print_inspect(*r);
    }
    return 0;
  }
  if (*val) {
    mc::api::ToolOptions vtool;
    vtool.note = note;
    auto r = mc::api::validate(path, from, vtool);
    if (!r) return fail(r.error(), json);
    if (json) {
      ojson errs = ojson::array();
      for (const auto& e : r->errors) errs.push_back(mc::api::error_json(e));
      std::cout << ojson{{"ok", r->ok()}, {"format", r->format}, {"errors", errs}, {"warnings", r->warnings},
                         {"info", r->info}}
                       .dump(2, ' ', false, ojson::error_handler_t::replace)
                << "\n";
    } else {
      for (const auto& e : r->errors) fmt::print("error: {}\n", e.render());
      for (const auto& w : r->warnings) fmt::print("warning: {}\n", w);
      fmt::print("{}: {} ({} errors, {} warnings)\n", path, r->ok() ? "OK" : "INVALID", r->errors.size(),
                 r->warnings.size());
    }
    return r->ok() ? 0 : mc::exit_code_for(r->errors.front().code);
  }
  if (*list) {
    if (what == "architectures") {
      auto rows = mc::api::list_architectures();
      if (json) {
        ojson j = ojson::array();
        for (const auto& r : rows) {
          ojson f = ojson::object();
          for (const auto& s : r.formats)
            f[s.format] = {{"read", s.read}, {"write", s.write}, {"quantizations", s.quantizations}};
          j.push_back({{"model_type", r.model_type}, {"architecture", r.hf_architecture},
                       {"gguf_arch", r.gguf_arch}, {"formats", f}});
        }
        std::cout << j.dump(2, ' ', false, ojson::error_handler_t::replace) << "\n";
      } else {
        for (const auto& r : rows) {
          fmt::print("{} ({}; GGUF {})\n", r.model_type, r.hf_architecture, r.gguf_arch.empty() ? "-" : r.gguf_arch);
          for (const auto& s : r.formats) {
            const char* rw = s.read && s.write ? "read, write" : s.read ? "read" : s.write ? "write" : "-";
            std::string q;
            for (const auto& n : s.quantizations) q += (q.empty() ? "" : " ") + n;
            fmt::print("  {:<12} {:<12}{}\n", s.format, rw, q.empty() ? "" : "  --quant " + q);
          }
        }
      }
      return 0;
    }
    if (what == "formats") {
      auto rows = mc::api::list_formats();
      if (json) {
        ojson j = ojson::array();
        for (const auto& r : rows)
          j.push_back({{"id", r.id}, {"description", r.description}, {"read", r.readable},
                       {"write", r.writable}, {"validate", r.validates}});
        std::cout << j.dump(2, ' ', false, ojson::error_handler_t::replace) << "\n";
      } else {
        fmt::print("{:<12} {:<5} {:<5} {}\n", "format", "read", "write", "description");
        for (const auto& r : rows)
          fmt::print("{:<12} {:<5} {:<5} {}{}\n", r.id, r.readable ? "yes" : "-", r.writable ? "yes" : "-",
                     r.description, r.readable || r.writable ? "" : " (not supported yet)");
      }
    } else {
      auto rows = mc::api::list_quantizations();
      if (json) {
        ojson j = ojson::array();
        for (const auto& r : rows) j.push_back({{"names", r.name}, {"formats", r.formats}, {"description", r.description}});
        std::cout << j.dump(2, ' ', false, ojson::error_handler_t::replace) << "\n";
      } else {
        for (const auto& r : rows) fmt::print("{}\n  {}\n  formats: {}\n", r.name, r.description, r.formats);
      }
    }
    return 0;
  }
  if (*ver) {
    if (json)
      std::cout << ojson{{"version", std::string(mc::api::version())}, {"kernels", std::string(mc::cpu_kernel_name())}}.dump(-1, ' ', false, ojson::error_handler_t::replace)
                << "\n";
    else
      fmt::print("modelconvert {} ({} kernels)\n", mc::api::version(), mc::cpu_kernel_name());
    return 0;
  }
  return 0;
}

// Process-wide settings a conversion's speed depends on, made before any thread starts.
void tune_process() {
  // Scratch buffers of a few hundred KiB to a few MiB are allocated and freed per batch of rows on
  // every thread. glibc's moving mmap threshold and heap trimming turned that into a brk/madvise
  // and fresh zero pages per batch: HF -> GGUF q8_0 of a 0.8 GB model took 0.62-0.71 s (1.1-1.3
  // CPU-s) against 0.20-0.21 s (0.33 CPU-s) with these fixed values. Blocks under 32 MiB (glibc's
  // own ceiling for the moving threshold) are reused from the heap; heap tops under 128 MiB are kept.
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 128 << 20);
}

}  // namespace

// Whatever escapes (a library exception, a bug) still ends as one error: with --json, one JSON
// document on stdout.
int main(int argc, char** argv) {
  bool json = false;
  for (int i = 1; i < argc; ++i) json = json || std::string_view(argv[i]) == "--json";
  // Memory or threads the operating system refused (a `ulimit -v`, a cgroup cap) are not bugs:
  // exit 3 like any other refusal of the OS, saying which limit to look at.
  try {
    tune_process();
    return run_cli(argc, argv);
  } catch (const std::bad_alloc&) {
    return fail(mc::make_error(mc::ErrorCode::Io, "out of memory: the operating system refused an allocation")
                    .with_hint("raise the memory limit (ulimit -v, the container's cap) or use fewer --threads"),
                json);
  } catch (const std::system_error& e) {
    return fail(mc::make_error(mc::ErrorCode::Io, "the operating system refused a resource: {}", e.what())
                    .with_hint("raise the process limits (ulimit -v / -u) or use fewer --threads"),
                json);
  } catch (const std::exception& e) {
    return fail(mc::make_error(mc::ErrorCode::Internal, "unexpected failure: {}", e.what()), json);
  }
}
