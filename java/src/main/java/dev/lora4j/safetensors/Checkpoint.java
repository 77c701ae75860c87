package dev.lora4j.safetensors;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.lora4j.io.JsonErrors;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The weights of a Hugging Face model folder: either one {@code model.safetensors}, or {@code
 * model.safetensors.index.json} plus the shards its {@code weight_map} names.
 *
 * <p>{@link #open(Path)} validates before anything is read: the index is a JSON object whose {@code
 * weight_map} maps every tensor name to a shard file name inside the folder; every shard exists and
 * is a valid safetensors file ({@link SafetensorsFile}); every tensor of the map is in its shard;
 * no tensor is held by two shards and no shard holds a tensor the index does not list. Each failure
 * is a {@link SafetensorsException} naming the index or shard file and the tensor.
 */
public final class Checkpoint implements AutoCloseable {
  /** File name of a single-file checkpoint. */
  public static final String SINGLE_FILE = "model.safetensors";

  /** File name of a sharded checkpoint's index. */
  public static final String INDEX_FILE = "model.safetensors.index.json";

  private static final ObjectMapper JSON =
      new ObjectMapper()
          .enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION)
          .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS);

  private final Path dir;
  private final Path index; // null for a single file
  private final Map<String, SafetensorsFile> byTensor; // weight_map order
  private final List<SafetensorsFile> shards;

  private Checkpoint(
      Path dir, Path index, Map<String, SafetensorsFile> byTensor, List<SafetensorsFile> shards) {
    this.dir = dir;
    this.index = index;
    this.byTensor = byTensor;
    this.shards = shards;
  }

  /**
   * Opens the weights of a model folder.
   *
   * @param dir folder holding {@code model.safetensors} (taken when both exist, as Hugging Face's
   *     {@code from_pretrained} takes it) or {@code model.safetensors.index.json} and its shards
   * @return the open checkpoint; close it when done
   * @throws SafetensorsException when the folder, the index or a shard is missing or invalid
   */
  public static Checkpoint open(Path dir) {
    Path single = dir.resolve(SINGLE_FILE);
    Path idx = dir.resolve(INDEX_FILE);
    if (Files.isRegularFile(single)) {
      SafetensorsFile f = SafetensorsFile.open(single);
      Map<String, SafetensorsFile> map = new LinkedHashMap<>();
      for (String n : f.names()) map.put(n, f);
      return new Checkpoint(dir, null, Collections.unmodifiableMap(map), List.of(f));
    }
    if (Files.isRegularFile(idx)) {
      return openSharded(dir, idx);
    }
    for (Path p : List.of(single, idx)) {
      // there but not a readable file: say what it is rather than that it is missing
      if (Files.isSymbolicLink(p) && !Files.exists(p)) {
        throw new SafetensorsException(p + " is a symbolic link to a file that does not exist");
      }
      if (Files.isDirectory(p)) {
        throw new SafetensorsException(p + " is a folder, not a file");
      }
    }
    throw new SafetensorsException(
        dir
            + ": no "
            + INDEX_FILE
            + " and no "
            + SINGLE_FILE
            + " in this folder; is it a Hugging Face model folder with safetensors weights?");
  }

  private static Checkpoint openSharded(Path dir, Path idx) {
    JsonNode root;
    try {
      root = JSON.readTree(Files.readAllBytes(idx));
    } catch (JsonProcessingException e) {
      throw new SafetensorsException(idx + ": not valid JSON: " + JsonErrors.describe(e), e);
    } catch (IOException e) {
      throw new SafetensorsException(idx + ": cannot read: " + e, e);
    }
    if (root == null || !root.isObject()) {
      throw new SafetensorsException(idx + ": not a JSON object");
    }
    JsonNode wm = root.get("weight_map");
    if (wm == null || !wm.isObject()) {
      throw new SafetensorsException(idx + ": key 'weight_map' is missing or not an object");
    }
    if (wm.isEmpty()) {
      throw new SafetensorsException(idx + ": key 'weight_map' lists no tensors");
    }
    // shard file name -> tensors the index puts there, in index order
    Map<String, List<String>> wanted = new LinkedHashMap<>();
    for (Map.Entry<String, JsonNode> e : wm.properties()) {
      JsonNode v = e.getValue();
      if (!v.isTextual()) {
        throw new SafetensorsException(
            idx + ": weight_map entry for tensor '" + e.getKey() + "' is not a file name string");
      }
      String shard = v.textValue();
      Path p;
      try {
        p = dir.resolve(shard).normalize();
      } catch (java.nio.file.InvalidPathException ex) {
        p = null; // e.g. a NUL character: not a file name on this system
      }
      if (shard.isEmpty()
          || p == null
          || p.getParent() == null
          || !p.getParent().equals(dir.normalize())) {
        throw new SafetensorsException(
            idx
                + ": weight_map puts tensor '"
                + e.getKey()
                + "' in '"
                + shard
                + "', which is not a file name inside "
                + dir);
      }
      wanted.computeIfAbsent(shard, k -> new ArrayList<>()).add(e.getKey());
    }
    List<SafetensorsFile> opened = new ArrayList<>();
    try {
      Map<String, SafetensorsFile> byShard = new LinkedHashMap<>();
      for (Map.Entry<String, List<String>> e : wanted.entrySet()) {
        Path p = dir.resolve(e.getKey());
        if (!Files.isRegularFile(p)) {
          throw new SafetensorsException(
              idx
                  + ": shard file '"
                  + e.getKey()
                  + "' is missing (it should hold tensor '"
                  + e.getValue().get(0)
                  + "' and "
                  + (e.getValue().size() - 1)
                  + " more); looked for "
                  + p);
        }
        SafetensorsFile f = SafetensorsFile.open(p);
        opened.add(f);
        byShard.put(e.getKey(), f);
        for (String t : e.getValue()) {
          if (!f.contains(t)) {
            throw new SafetensorsException(
                idx
                    + ": tensor '"
                    + t
                    + "' is mapped to shard '"
                    + e.getKey()
                    + "', but "
                    + p
                    + " does not hold it");
          }
        }
      }
      for (Map.Entry<String, SafetensorsFile> e : byShard.entrySet()) {
        for (String t : e.getValue().names()) {
          JsonNode owner = wm.get(t);
          if (owner == null) {
            throw new SafetensorsException(
                idx
                    + ": shard '"
                    + e.getKey()
                    + "' holds tensor '"
                    + t
                    + "', which the weight_map does not list");
          }
          if (!owner.textValue().equals(e.getKey())) {
            throw new SafetensorsException(
                idx
                    + ": tensor '"
                    + t
                    + "' is in two shards, '"
                    + owner.textValue()
                    + "' and '"
                    + e.getKey()
                    + "'");
          }
        }
      }
      Map<String, SafetensorsFile> map = new LinkedHashMap<>();
      for (Map.Entry<String, JsonNode> e : wm.properties()) {
        map.put(e.getKey(), byShard.get(e.getValue().textValue()));
      }
      return new Checkpoint(dir, idx, Collections.unmodifiableMap(map), List.copyOf(opened));
    } catch (RuntimeException e) {
      for (SafetensorsFile f : opened) f.close();
      throw e;
    }
  }

  /**
   * @return the model folder
   */
  public Path dir() {
    return dir;
  }

  /**
   * @return whether the weights are sharded (an index file is present)
   */
  public boolean isSharded() {
    return index != null;
  }

  /**
   * @return the open shard files (one for a single-file checkpoint)
   */
  public List<SafetensorsFile> shards() {
    return shards;
  }

  /**
   * @return every tensor name, in the order of the index (or of the single file)
   */
  public List<String> names() {
    return List.copyOf(byTensor.keySet());
  }

  /**
   * @param name tensor name
   * @return whether the checkpoint holds it
   */
  public boolean contains(String name) {
    return byTensor.containsKey(name);
  }

  /**
   * @param name tensor name
   * @return the shard file that holds it
   * @throws SafetensorsException naming the folder and tensor when there is no such tensor
   */
  public SafetensorsFile fileOf(String name) {
    SafetensorsFile f = byTensor.get(name);
    if (f == null) {
      throw new SafetensorsException(
          (index != null ? index : dir.resolve(SINGLE_FILE)) + ": no tensor named '" + name + "'");
    }
    return f;
  }

  /**
   * @param name tensor name
   * @return its header entry (offsets relative to its shard's data section)
   */
  public TensorInfo info(String name) {
    return fileOf(name).tensor(name);
  }

  /**
   * @param name tensor name
   * @return its dimensions
   */
  public long[] shape(String name) {
    return info(name).shape();
  }

  /**
   * @param name tensor name
   * @return its element type
   */
  public DType dtype(String name) {
    return info(name).dtype();
  }

  /**
   * The raw bytes, memory-mapped read-only (for handing bf16 weights to the native core).
   *
   * @param name tensor name
   * @return little-endian buffer of the tensor's bytes
   */
  public ByteBuffer data(String name) {
    return fileOf(name).data(name);
  }

  /**
   * @param name tensor name
   * @return the elements converted to float (bf16 exactly)
   */
  public float[] readFloat(String name) {
    return fileOf(name).readFloat(name);
  }

  /** Closes every shard. */
  @Override
  public void close() {
    for (SafetensorsFile f : shards) f.close();
  }

  @Override
  public String toString() {
    return "Checkpoint["
        + dir
        + ", "
        + byTensor.size()
        + " tensors in "
        + shards.size()
        + " file(s)]";
  }
}
