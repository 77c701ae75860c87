package dev.lora4j.train;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.lora4j.Lora4jException;
import dev.lora4j.MistralModel;
import dev.lora4j.OptimizerState;
import dev.lora4j.TrainingListener;
import dev.lora4j.data.DataPosition;
import dev.lora4j.io.JsonErrors;
import dev.lora4j.model.peft.LoraAdapter;
import dev.lora4j.safetensors.DType;
import dev.lora4j.safetensors.SafetensorsFile;
import dev.lora4j.safetensors.SafetensorsWriter;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.logging.Logger;
import java.util.stream.Stream;

/**
 * Checkpoints of a run: {@code outputDir/checkpoint-<step>/} holding the adapter (PEFT layout),
 * {@code optimizer.safetensors} (AdamW moments and step count), {@code trainer_state.json} (step,
 * data position, guard history, evaluations) and {@code manifest.json} (SHA-256 and size of every
 * file). A checkpoint is written under a temporary name and renamed when complete, so a process
 * killed while writing leaves the previous checkpoints as they were; at most {@code keep} are kept.
 * Loading takes the newest checkpoint whose manifest checks out; a damaged one is reported and the
 * one before it used.
 */
public final class CheckpointStore {
  private static final Logger LOG = Logger.getLogger(CheckpointStore.class.getName());
  private static final ObjectMapper JSON = new ObjectMapper();
  static final String PREFIX = "checkpoint-";
  private final Path root;
  private final int keep;

  public CheckpointStore(Path root, int keep) {
    this.root = root;
    this.keep = keep;
  }

  /** Complete checkpoint folders, oldest first. */
  public List<Path> list() {
    List<Path> out = new ArrayList<>();
    if (!Files.isDirectory(root)) return out;
    try (DirectoryStream<Path> ds = Files.newDirectoryStream(root, PREFIX + "*")) {
      for (Path p : ds) {
        if (Files.isDirectory(p) && stepOf(p) >= 0) out.add(p);
      }
    } catch (IOException e) {
      throw new Lora4jException("cannot list checkpoints in " + root + ": " + e, e);
    }
    out.sort(Comparator.comparingLong(CheckpointStore::stepOf));
    return out;
  }

  static long stepOf(Path p) {
    String n = p.getFileName().toString();
    try {
      return Long.parseLong(n.substring(PREFIX.length()));
    } catch (NumberFormatException | IndexOutOfBoundsException e) {
      return -1;
    }
  }

  /** Writes a checkpoint of the model's adapter, optimizer state and the trainer state. */
  public Path save(MistralModel model, TrainerState state) {
    return save(model, state, null);
  }

  /**
   * Writes a checkpoint of the model's adapter, optimizer state and the trainer state, with the
   * settings of the run (checked when it is resumed; null: none recorded).
   */
  public Path save(MistralModel model, TrainerState state, RunSettings settings) {
    Path dir = root.resolve(PREFIX + state.step());
    Path tmp = root.resolve(".tmp-" + PREFIX + state.step());
    try {
      deleteTree(tmp);
      Files.createDirectories(tmp);
      model.adapter().write(tmp);
      writeOptimizer(model.optimizerState(), tmp.resolve("optimizer.safetensors"));
      Files.writeString(
          tmp.resolve("trainer_state.json"), stateJson(state, settings), StandardCharsets.UTF_8);
      writeManifest(tmp);
      deleteTree(dir);
      Files.move(tmp, dir, StandardCopyOption.ATOMIC_MOVE);
    } catch (IOException | RuntimeException e) {
      discard(tmp);
      throw new Lora4jException(
          "cannot write checkpoint "
              + dir
              + " (previous checkpoints are intact): "
              + e.getMessage(),
          e);
    }
    List<Path> all = list();
    for (int i = 0; i + keep < all.size(); i++) {
      try {
        deleteTree(all.get(i));
      } catch (IOException e) {
        LOG.warning("cannot delete old checkpoint " + all.get(i) + ": " + e);
      }
    }
    return dir;
  }

  /** A checkpoint's record of the run's end: see {@link #recordRunEnd}. */
  static final String RUN_END = "run_end.json";

  /**
   * A run's end as its last checkpoint records it.
   *
   * @param state the trainer state at the end
   * @param metricsLines the lines metrics.jsonl held then (a resumed run keeps those)
   */
  public record RunEnd(TrainerState state, long metricsLines) {}

  /**
   * Records in checkpoint dir, written at a run's last step before the run's end, the trainer state
   * of that end (its final evaluation, the retries it no longer makes, the batches refused after
   * the step) and how many lines metrics.jsonl then held: {@link #readState} takes that state
   * instead of trainer_state.json, so that the run resumed from it does none of them again. The
   * adapter and optimizer files stay as they are (a refused step changes neither). The record is
   * one file moved in whole (a kill leaves it complete or absent) holding its SHA-256: a damaged
   * one is set aside with a warning, and the checkpoint's own state is used.
   */
  public void recordRunEnd(Path dir, TrainerState state, RunSettings settings, long metricsLines) {
    Path tmp = dir.resolve(RUN_END + ".tmp");
    try {
      String st = stateJson(state, settings);
      ObjectNode o = JSON.createObjectNode();
      o.put("sha256", sha256(metricsLines + "\n" + st));
      o.put("metrics_lines", metricsLines);
      o.put("trainer_state", st);
      Files.writeString(tmp, JSON.writeValueAsString(o), StandardCharsets.UTF_8);
      Files.move(tmp, dir.resolve(RUN_END), StandardCopyOption.ATOMIC_MOVE);
    } catch (IOException | RuntimeException e) {
      discard(tmp);
      throw new Lora4jException("cannot record the run's end in " + dir + ": " + e, e);
    }
  }

  /** The run's end checkpoint dir records ({@link #recordRunEnd}), or null where it has none. */
  public static RunEnd runEnd(Path dir) {
    Path end = dir.resolve(RUN_END);
    if (!Files.isRegularFile(end)) return null;
    try {
      JsonNode o = JSON.readTree(Files.readString(end));
      String st = o.path("trainer_state").asText();
      long lines = o.path("metrics_lines").asLong(-1);
      if (!st.isEmpty()
          && lines >= 0
          && sha256(lines + "\n" + st).equals(o.path("sha256").asText()))
        return new RunEnd(parseState(st), lines);
      LOG.warning(end + " does not match its checksum: the checkpoint's own state is used");
    } catch (IOException | RuntimeException e) {
      LOG.warning(end + " unreadable (" + e.getMessage() + "): the checkpoint's own state is used");
    }
    return null;
  }

  /**
   * Restores the newest intact checkpoint into the model (adapter, moments, step count) and returns
   * its trainer state, or null when there is none.
   */
  public TrainerState loadLatest(MistralModel model) {
    Path dir = latestIntact();
    return dir == null ? null : load(model, dir);
  }

  /**
   * The newest checkpoint whose manifest checks out (a damaged one is reported and skipped), or
   * null when there is none.
   */
  public Path latestIntact() {
    return latestIntact(true);
  }

  /**
   * The same; warn false says nothing of a damaged one (a look ahead of the run, which itself
   * reports it once).
   */
  public Path latestIntact(boolean warn) {
    List<Path> all = list();
    for (int i = all.size() - 1; i >= 0; i--) {
      Path dir = all.get(i);
      String problem = verify(dir);
      if (problem != null) {
        if (warn)
          LOG.warning(
              "checkpoint " + dir + " is damaged (" + problem + "); trying the previous one");
        continue;
      }
      return dir;
    }
    return null;
  }

  /** Restores a checkpoint into the model (adapter, moments, step count); its trainer state. */
  public TrainerState load(MistralModel model, Path dir) {
    model.attachAdapter(dir);
    Path opt = dir.resolve("optimizer.safetensors");
    try {
      model.setOptimizerState(readOptimizer(opt));
    } catch (Lora4jException e) {
      throw e.getMessage().startsWith(opt.toString())
          ? e
          : new Lora4jException(opt + ": " + e.getMessage(), e);
    }
    return readState(dir);
  }

  /**
   * The trainer state of a checkpoint: its record of the run's end where it has an intact one
   * ({@link #recordRunEnd}), else trainer_state.json.
   */
  public static TrainerState readState(Path dir) {
    RunEnd end = runEnd(dir);
    if (end != null) return end.state();
    Path f = dir.resolve("trainer_state.json");
    try {
      return parseState(Files.readString(f));
    } catch (BadState e) {
      throw new Lora4jException(f + ": " + e.getMessage(), e);
    } catch (IOException e) {
      throw new Lora4jException("cannot read " + f + ": " + JsonErrors.describe(e), e);
    } catch (RuntimeException e) {
      throw new Lora4jException("cannot read " + f + ": " + e, e);
    }
  }

  /** A trainer state whose key is missing, of another type or out of range: the key named. */
  static final class BadState extends IOException {
    private static final long serialVersionUID = 1L;

    BadState(String message) {
      super(message);
    }
  }

  /** The whole number at key of obj, at least min (where what names the key in messages). */
  private static long whole(JsonNode obj, String key, long min, String what) throws BadState {
    JsonNode v = obj == null ? null : obj.get(key);
    if (v == null || !v.isIntegralNumber() || !v.canConvertToLong()) {
      throw new BadState(
          "key '"
              + what
              + "' must be a whole number, got "
              + (v == null ? "nothing (the key is missing)" : v.toString()));
    }
    if (v.longValue() < min) {
      throw new BadState("key '" + what + "' must be at least " + min + ", got " + v.longValue());
    }
    return v.longValue();
  }

  /**
   * The run settings a checkpoint recorded, or null for a checkpoint written before they were
   * recorded.
   */
  public static RunSettings readSettings(Path dir) {
    try {
      JsonNode n =
          JSON.readTree(Files.readString(dir.resolve("trainer_state.json"))).get("run_settings");
      return n == null || !n.isObject() ? null : RunSettings.read(n);
    } catch (IOException e) {
      throw new Lora4jException("cannot read " + dir.resolve("trainer_state.json") + ": " + e, e);
    }
  }

  /** Null when every file of the manifest is present with its size and SHA-256; else why not. */
  public static String verify(Path dir) {
    Path m = dir.resolve("manifest.json");
    if (!Files.isRegularFile(m)) return "no manifest.json";
    try {
      JsonNode files = JSON.readTree(Files.readAllBytes(m)).path("files");
      if (!files.isObject() || files.size() == 0) return "manifest.json lists no file";
      for (Map.Entry<String, JsonNode> e : (Iterable<Map.Entry<String, JsonNode>>) files::fields) {
        Path f = dir.resolve(e.getKey());
        if (!Files.isRegularFile(f)) return e.getKey() + " is missing";
        if (Files.size(f) != e.getValue().path("size").asLong())
          return e.getKey() + " has the wrong size";
        if (!sha256(f).equals(e.getValue().path("sha256").asText())) {
          return e.getKey() + " does not match its checksum";
        }
      }
      return null;
    } catch (IOException | RuntimeException e) {
      return "manifest.json unreadable: " + e.getMessage();
    }
  }

  private static void writeManifest(Path dir) throws IOException {
    ObjectNode files = JSON.createObjectNode();
    try (Stream<Path> s = Files.list(dir)) {
      for (Path f : s.sorted().toList()) {
        if (!Files.isRegularFile(f)) continue;
        ObjectNode e = files.putObject(f.getFileName().toString());
        e.put("size", Files.size(f));
        e.put("sha256", sha256(f));
      }
    }
    ObjectNode root = JSON.createObjectNode();
    root.set("files", files);
    Files.writeString(
        dir.resolve("manifest.json"),
        JSON.writerWithDefaultPrettyPrinter().writeValueAsString(root));
  }

  /**
   * Deletes a folder or file being written after a failure (a failure to delete it is not
   * reported).
   */
  private static void discard(Path tmp) {
    try {
      deleteTree(tmp);
    } catch (IOException ignored) {
      // the original failure is what matters
    }
  }

  static String sha256(String s) {
    try {
      return HexFormat.of()
          .formatHex(
              MessageDigest.getInstance("SHA-256").digest(s.getBytes(StandardCharsets.UTF_8)));
    } catch (java.security.NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  static String sha256(Path f) throws IOException {
    try (InputStream in = Files.newInputStream(f)) {
      MessageDigest md = MessageDigest.getInstance("SHA-256");
      byte[] buf = new byte[1 << 16];
      int n;
      while ((n = in.read(buf)) > 0) md.update(buf, 0, n);
      return HexFormat.of().formatHex(md.digest());
    } catch (java.security.NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  private static void writeOptimizer(OptimizerState s, Path file) {
    SafetensorsWriter w = new SafetensorsWriter();
    Map<String, String> meta = new TreeMap<>();
    meta.put("format", "pt");
    meta.put("step", Long.toString(s.step()));
    w.metadata(meta);
    for (Map.Entry<String, LoraAdapter.Weight> e : s.expAvg().entrySet()) {
      LoraAdapter.Weight m = e.getValue(), v = s.expAvgSq().get(e.getKey());
      w.addFloats("exp_avg." + e.getKey(), DType.F32, m.shape(), m.values());
      w.addFloats("exp_avg_sq." + e.getKey(), DType.F32, v.shape(), v.values());
    }
    w.write(file);
  }

  /** The moments saved by writeOptimizer; the model checks that every LoRA tensor has its own. */
  private static OptimizerState readOptimizer(Path file) {
    try (SafetensorsFile f = SafetensorsFile.open(file)) {
      String step = f.metadata().get("step");
      if (step == null) throw new Lora4jException(file + ": metadata has no optimizer step");
      Map<String, LoraAdapter.Weight> m = new LinkedHashMap<>(), v = new LinkedHashMap<>();
      for (String name : f.names()) {
        Map<String, LoraAdapter.Weight> into =
            name.startsWith("exp_avg.") ? m : name.startsWith("exp_avg_sq.") ? v : null;
        if (into == null) continue;
        long[] shape = f.tensor(name).shape();
        if (shape.length != 2) {
          throw new Lora4jException(file + ": " + name + " is not a matrix");
        }
        into.put(
            name.substring(name.indexOf('.') + 1),
            new LoraAdapter.Weight((int) shape[0], (int) shape[1], f.readFloat(name)));
      }
      return new OptimizerState(Long.parseLong(step), m, v);
    }
  }

  static String stateJson(TrainerState s, RunSettings settings) throws IOException {
    ObjectNode n = JSON.createObjectNode();
    n.put("step", s.step());
    n.put("total_steps", s.totalSteps());
    n.putObject("data_position")
        .put("epoch", s.position().epoch())
        .put("examples", s.position().examples());
    n.put("skipped_steps", s.skippedSteps());
    n.put("guard_rejections", s.guardRejections());
    ArrayNode g = n.putArray("guard_history");
    for (double[] h : s.guardHistory()) g.addArray().add(h[0]).add(h[1]);
    ArrayNode ev = n.putArray("evaluations");
    for (TrainingListener.Evaluation e : s.evaluations()) {
      ObjectNode o = ev.addObject().put("step", e.step()).put("tokens", e.tokens());
      MetricsFile.num(o, "loss", e.loss());
      MetricsFile.num(o, "base_loss", e.baseLoss());
      if (e.hasGeneral()) {
        MetricsFile.num(o, "general_loss", e.generalLoss());
        MetricsFile.num(o, "base_general_loss", e.baseGeneralLoss());
        o.put("general_tokens", e.generalTokens());
      }
    }
    ArrayNode pr = n.putArray("pending_retries");
    for (TrainerState.PendingRetry r : s.pendingRetries()) {
      ObjectNode o = pr.addObject();
      o.putObject("from").put("epoch", r.from().epoch()).put("examples", r.from().examples());
      o.put("micro_batches", r.microBatches()).put("step", r.step()).put("reason", r.reason());
    }
    n.put("rejected_batches", s.rejectedBatches());
    if (settings != null) settings.writeTo(n.putObject("run_settings"));
    return JSON.writerWithDefaultPrettyPrinter().writeValueAsString(n);
  }

  /** A number, NaN when absent or null (JSON has no NaN). */
  private static double number(JsonNode n, String key) {
    JsonNode v = n.get(key);
    return v != null && v.isNumber() ? v.asDouble() : Double.NaN;
  }

  static TrainerState parseState(String json) throws IOException {
    JsonNode n = JSON.readTree(json);
    if (n == null || !n.isObject()) throw new BadState("not a JSON object");
    // the keys that place the run: checked by name (a step read as 0 from a string restarted the
    // run over its own checkpoints; a negative one failed later on a setting never given)
    long step = whole(n, "step", 0, "step");
    long total = whole(n, "total_steps", 1, "total_steps");
    if (step > total) {
      throw new BadState("key 'step' is " + step + ", past key 'total_steps' (" + total + ")");
    }
    JsonNode p = n.get("data_position");
    if (p == null || !p.isObject()) {
      throw new BadState("key 'data_position' must be an object with 'epoch' and 'examples'");
    }
    DataPosition at =
        new DataPosition(
            (int) Math.min(Integer.MAX_VALUE, whole(p, "epoch", 0, "data_position.epoch")),
            whole(p, "examples", 0, "data_position.examples"));
    long skipped = whole(n, "skipped_steps", 0, "skipped_steps");
    JsonNode gh = n.path("guard_history");
    if (!gh.isMissingNode() && !gh.isArray()) {
      throw new BadState("key 'guard_history' must be an array of [mean, deviation] pairs");
    }
    List<double[]> g = new ArrayList<>();
    for (JsonNode h : gh) {
      if (!h.isArray() || h.size() != 2 || !h.get(0).isNumber() || !h.get(1).isNumber()) {
        throw new BadState("key 'guard_history' must be an array of [mean, deviation] pairs");
      }
      g.add(new double[] {h.get(0).asDouble(), h.get(1).asDouble()});
    }
    List<TrainingListener.Evaluation> ev = new ArrayList<>();
    for (JsonNode e : n.path("evaluations")) {
      ev.add(
          new TrainingListener.Evaluation(
              e.get("step").asLong(),
              number(e, "loss"),
              number(e, "base_loss"),
              e.get("tokens").asLong(),
              number(e, "general_loss"),
              number(e, "base_general_loss"),
              e.path("general_tokens").asLong(0)));
    }
    return new TrainerState(
        step,
        total,
        at,
        skipped,
        g,
        n.path("guard_rejections").asInt(),
        ev,
        pendingRetries(n.path("pending_retries")),
        n.path("rejected_batches").asLong(0));
  }

  private static List<TrainerState.PendingRetry> pendingRetries(JsonNode arr) {
    List<TrainerState.PendingRetry> out = new ArrayList<>();
    for (JsonNode r : arr) {
      JsonNode f = r.get("from");
      out.add(
          new TrainerState.PendingRetry(
              new DataPosition(f.get("epoch").asInt(), f.get("examples").asLong()),
              r.get("micro_batches").asInt(),
              r.get("step").asLong(),
              r.get("reason").asText()));
    }
    return out;
  }

  static void deleteTree(Path p) throws IOException {
    if (!Files.exists(p)) return;
    try (Stream<Path> s = Files.walk(p)) {
      for (Path q : s.sorted(Comparator.reverseOrder()).toList()) Files.delete(q);
    }
  }
}
