package dev.lora4j.safetensors;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.lora4j.Fixtures;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Damaged safetensors files and checkpoints, all in one JVM: each must be an exception whose
 * message names the file and the tensor or header key, never a crash, a hang or garbage data.
 */
class BadFilesTest {
  private static final Path SHARD = Fixtures.hf("tiny", "model/model-00001-of-00004.safetensors");

  @TempDir Path tmp;

  private static SafetensorsException fails(Path file) {
    SafetensorsException e =
        assertThrows(
            SafetensorsException.class,
            () -> {
              try (SafetensorsFile f = SafetensorsFile.open(file)) {
                f.names();
              }
            });
    assertTrue(
        e.getMessage().contains(file.toString()), "message names the file: " + e.getMessage());
    return e;
  }

  private static void assertMentions(Exception e, String... parts) {
    for (String p : parts) {
      assertTrue(e.getMessage().contains(p), "message '" + e.getMessage() + "' lacks '" + p + "'");
    }
  }

  /** A file with the given header JSON and data bytes. */
  private Path file(String name, String json, int dataBytes) throws IOException {
    byte[] h = json.getBytes(StandardCharsets.UTF_8);
    ByteBuffer b = ByteBuffer.allocate(8 + h.length + dataBytes).order(ByteOrder.LITTLE_ENDIAN);
    b.putLong(h.length).put(h);
    Path p = tmp.resolve(name);
    Files.write(p, b.array());
    return p;
  }

  private Path withHeaderLength(String name, long length) throws IOException {
    byte[] bytes = Files.readAllBytes(SHARD);
    ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).putLong(0, length);
    Path p = tmp.resolve(name);
    Files.write(p, bytes);
    return p;
  }

  @Test
  void truncatedCopiesFailAtEveryCutPoint() throws IOException {
    byte[] bytes = Files.readAllBytes(SHARD);
    long n = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).getLong();
    long[] cuts = {
      0,
      1,
      7,
      8,
      9,
      8 + n / 2,
      8 + n - 1,
      8 + n,
      8 + n + 1,
      8 + n + 4096,
      bytes.length / 2,
      bytes.length - 4096,
      bytes.length - 1
    };
    for (long cut : cuts) {
      Path p = tmp.resolve("cut-" + cut + ".safetensors");
      Files.write(p, Arrays.copyOf(bytes, (int) cut));
      SafetensorsException e = fails(p);
      if (cut < 8) {
        assertMentions(e, "too short");
      } else if (cut < 8 + n) {
        assertMentions(e, "header length " + n, "past the end");
      } else {
        // the header is intact: the first tensor whose data is cut off is named
        assertMentions(e, "tensor '", "outside the data section", "truncated");
      }
    }
    // the last tensor in the file is the one a one-byte cut damages
    SafetensorsException last = fails(tmp.resolve("cut-" + (bytes.length - 1) + ".safetensors"));
    assertMentions(last, "model.layers.0.self_attn.v_proj.weight");
  }

  @Test
  void headerLengthBeyondTheFile() throws IOException {
    long size = Files.size(SHARD);
    assertMentions(
        fails(withHeaderLength("beyond.safetensors", size)),
        "header length " + size,
        "past the end");
    assertMentions(fails(withHeaderLength("beyond8.safetensors", size - 7)), "past the end");
  }

  @Test
  void headerLengthNear2To63AndZero() throws IOException {
    for (long len :
        new long[] {Long.MAX_VALUE, Long.MIN_VALUE, -1L, Long.MAX_VALUE - 7, 100_000_001L, 0L}) {
      SafetensorsException e = fails(withHeaderLength("len" + len + ".safetensors", len));
      assertMentions(e, "header length " + Long.toUnsignedString(len), "out of range");
    }
  }

  @Test
  void overlappingOffsets() throws IOException {
    Path p =
        file(
            "overlap.safetensors",
            "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],"
                + "\"data_offsets\":[0,16]},\"b\":{\"dtype\":\"F32\",\"shape\":[4],"
                + "\"data_offsets\":[8,24]}}",
            24);
    assertMentions(fails(p), "tensor 'b'", "overlaps tensor 'a'");
    Path same =
        file(
            "same.safetensors",
            "{\"a\":{\"dtype\":\"U8\",\"shape\":[4],"
                + "\"data_offsets\":[0,4]},\"b\":{\"dtype\":\"I32\",\"shape\":[1],"
                + "\"data_offsets\":[0,4]}}",
            4);
    assertMentions(fails(same), "overlaps");
  }

  @Test
  void offsetsOutOfRange() throws IOException {
    Path end =
        file(
            "end.safetensors",
            "{\"w\":{\"dtype\":\"F32\",\"shape\":[4]," + "\"data_offsets\":[0,16]}}",
            12);
    assertMentions(fails(end), "tensor 'w'", "[0, 16]", "data section of 12 bytes");
    Path reversed =
        file(
            "rev.safetensors",
            "{\"w\":{\"dtype\":\"F32\",\"shape\":[0]," + "\"data_offsets\":[8,4]}}",
            16);
    assertMentions(fails(reversed), "tensor 'w'", "[8, 4]");
    Path negative =
        file(
            "neg.safetensors",
            "{\"w\":{\"dtype\":\"F32\",\"shape\":[1]," + "\"data_offsets\":[-4,0]}}",
            16);
    assertMentions(fails(negative), "tensor 'w'", "data_offsets");
    Path huge =
        file(
            "huge.safetensors",
            "{\"w\":{\"dtype\":\"U8\",\"shape\":[1],"
                + "\"data_offsets\":[18446744073709551615,18446744073709551616]}}",
            16);
    assertMentions(fails(huge), "tensor 'w'", "data_offsets");
    Path three =
        file(
            "three.safetensors",
            "{\"w\":{\"dtype\":\"U8\",\"shape\":[1]," + "\"data_offsets\":[0,1,2]}}",
            16);
    assertMentions(fails(three), "tensor 'w'", "data_offsets");
  }

  @Test
  void dtypeTimesShapeNotMatchingTheBytes() throws IOException {
    Path p =
        file(
            "size.safetensors",
            "{\"w\":{\"dtype\":\"BF16\",\"shape\":[3,4]," + "\"data_offsets\":[0,48]}}",
            48);
    assertMentions(fails(p), "tensor 'w'", "BF16", "needs 24 bytes", "hold 48");
  }

  @Test
  void shapeProductOverflow() throws IOException {
    Path p =
        file(
            "ovf.safetensors",
            "{\"w\":{\"dtype\":\"U8\",\"shape\":[4294967296,4294967296,"
                + "4294967296],\"data_offsets\":[0,0]}}",
            0);
    assertMentions(fails(p), "tensor 'w'", "overflows");
    Path bytes =
        file(
            "ovf2.safetensors",
            "{\"w\":{\"dtype\":\"F64\",\"shape\":"
                + "[2305843009213693952],\"data_offsets\":[0,0]}}",
            0);
    assertMentions(fails(bytes), "tensor 'w'", "overflows");
    Path big =
        file(
            "ovf3.safetensors",
            "{\"w\":{\"dtype\":\"U8\",\"shape\":"
                + "[99999999999999999999999],\"data_offsets\":[0,0]}}",
            0);
    assertMentions(fails(big), "tensor 'w'", "not a non-negative integer");
  }

  @Test
  void malformedHeaders() throws IOException {
    assertMentions(
        fails(
            file(
                "dtype.safetensors",
                "{\"w\":{\"dtype\":\"F8_E4M3\",\"shape\":[1]," + "\"data_offsets\":[0,1]}}",
                1)),
        "tensor 'w'",
        "unsupported dtype 'F8_E4M3'");
    assertMentions(
        fails(
            file("nodtype.safetensors", "{\"w\":{\"shape\":[1]," + "\"data_offsets\":[0,1]}}", 1)),
        "tensor 'w'",
        "'dtype'");
    assertMentions(
        fails(
            file(
                "negdim.safetensors",
                "{\"w\":{\"dtype\":\"U8\",\"shape\":[-1]," + "\"data_offsets\":[0,0]}}",
                0)),
        "tensor 'w'",
        "shape");
    assertMentions(
        fails(
            file(
                "fdim.safetensors",
                "{\"w\":{\"dtype\":\"U8\",\"shape\":[1.5]," + "\"data_offsets\":[0,0]}}",
                0)),
        "tensor 'w'",
        "shape");
    assertMentions(
        fails(
            file(
                "noshape.safetensors",
                "{\"w\":{\"dtype\":\"U8\"," + "\"data_offsets\":[0,0]}}",
                0)),
        "tensor 'w'",
        "'shape'");
    assertMentions(fails(file("array.safetensors", "[1,2,3]", 0)), "not a JSON object");
    assertMentions(fails(file("json.safetensors", "{\"w\":", 0)), "not valid JSON");
    assertMentions(fails(file("trail.safetensors", "{} {}", 0)), "not valid JSON");
    assertMentions(
        fails(
            file(
                "dup.safetensors",
                "{\"w\":{\"dtype\":\"U8\",\"shape\":[0],"
                    + "\"data_offsets\":[0,0]},\"w\":{\"dtype\":\"U8\",\"shape\":[0],"
                    + "\"data_offsets\":[0,0]}}",
                0)),
        "not valid JSON",
        "w");
    assertMentions(
        fails(file("entry.safetensors", "{\"w\":7}", 0)), "tensor 'w'", "not a JSON object");
    assertMentions(
        fails(file("meta.safetensors", "{\"__metadata__\":{\"format\":1}}", 0)),
        "__metadata__.format",
        "must be a string");
    assertMentions(fails(file("meta2.safetensors", "{\"__metadata__\":[]}", 0)), "'__metadata__'");
    // a valid file made the same way opens (so the failures above are the damage, not the helper)
    try (SafetensorsFile f =
        SafetensorsFile.open(
            file(
                "ok.safetensors",
                "{\"__metadata__\":"
                    + "{\"format\":\"pt\"},\"w\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]}}",
                2))) {
      assertArrayEquals(new long[] {0, 0}, f.readLong("w"));
    }
  }

  @Test
  void missingTensorNamesFileAndTensor() {
    try (SafetensorsFile f = SafetensorsFile.open(SHARD)) {
      SafetensorsException e =
          assertThrows(
              SafetensorsException.class, () -> f.tensor("model.layers.9.mlp.up_proj.weight"));
      assertMentions(e, SHARD.toString(), "model.layers.9.mlp.up_proj.weight");
    }
    try (Checkpoint ck = Checkpoint.open(Fixtures.hf("tiny", "model"))) {
      SafetensorsException e =
          assertThrows(SafetensorsException.class, () -> ck.readFloat("lm_head.bias"));
      assertMentions(e, Checkpoint.INDEX_FILE, "lm_head.bias");
    }
  }

  private Path copyModel() throws IOException {
    Path src = Fixtures.hf("tiny", "model");
    Path dst = tmp.resolve("model");
    Files.createDirectories(dst);
    try (Stream<Path> s = Files.list(src)) {
      for (Path p : s.toList()) Files.copy(p, dst.resolve(p.getFileName()));
    }
    return dst;
  }

  private static SafetensorsException checkpointFails(Path dir) {
    return assertThrows(SafetensorsException.class, () -> Checkpoint.open(dir).close());
  }

  @Test
  void missingShard() throws IOException {
    Path dir = copyModel();
    Files.delete(dir.resolve("model-00003-of-00004.safetensors"));
    assertMentions(
        checkpointFails(dir),
        dir.resolve(Checkpoint.INDEX_FILE).toString(),
        "model-00003-of-00004.safetensors",
        "model.layers.1.input_layernorm.weight",
        "missing");
  }

  @Test
  void indexAndShardsDisagree() throws IOException {
    Path dir = copyModel();
    Path index = dir.resolve(Checkpoint.INDEX_FILE);
    String json = Files.readString(index);
    // the index puts lm_head in shard 1, which does not hold it
    Files.writeString(
        index,
        json.replace(
            "\"lm_head.weight\": \"model-00004-of-00004.safetensors\"",
            "\"lm_head.weight\": \"model-00001-of-00004.safetensors\""));
    assertMentions(
        checkpointFails(dir),
        index.toString(),
        "lm_head.weight",
        "model-00001-of-00004.safetensors",
        "does not hold it");
    // a tensor in two shards: shard 4 also gets model.norm.weight, which lives in shard 3
    Files.writeString(index, json);
    Path shard4 = dir.resolve("model-00004-of-00004.safetensors");
    try (SafetensorsFile s3 =
            SafetensorsFile.open(dir.resolve("model-00003-of-00004.safetensors"));
        SafetensorsFile s4 = SafetensorsFile.open(shard4)) {
      SafetensorsWriter w = new SafetensorsWriter();
      w.add(
          "lm_head.weight",
          DType.BF16,
          s4.tensor("lm_head.weight").shape(),
          s4.data("lm_head.weight"));
      w.add(
          "model.norm.weight",
          DType.BF16,
          s3.tensor("model.norm.weight").shape(),
          s3.data("model.norm.weight"));
      w.write(shard4);
    }
    assertMentions(
        checkpointFails(dir),
        "model.norm.weight",
        "two shards",
        "model-00003-of-00004.safetensors",
        "model-00004-of-00004.safetensors");
    // a shard path escaping the folder
    Files.writeString(
        index,
        json.replace(
            "\"model.norm.weight\": \"model-00003-of-00004" + ".safetensors\"",
            "\"model.norm.weight\": \"../model-00003-of-00004.safetensors\""));
    assertMentions(checkpointFails(dir), "model.norm.weight", "not a file name inside");
    Files.writeString(index, "{\"weight_map\": [1]}");
    assertMentions(checkpointFails(dir), index.toString(), "'weight_map'");
    Files.writeString(index, "{\"weight_map\": {\"a\": ");
    assertMentions(checkpointFails(dir), index.toString(), "not valid JSON");
    Files.delete(index);
    assertMentions(
        checkpointFails(dir), dir.toString(), Checkpoint.INDEX_FILE, Checkpoint.SINGLE_FILE);
  }

  @Test
  void damagedShardInsideCheckpointNamesTheShard() throws IOException {
    Path dir = copyModel();
    Path shard = dir.resolve("model-00002-of-00004.safetensors");
    byte[] b = Files.readAllBytes(shard);
    Files.write(shard, Arrays.copyOf(b, b.length - 100));
    assertMentions(checkpointFails(dir), shard.toString(), "tensor '");
  }

  /** After every failure above the JVM is still fine and reads a good checkpoint. */
  @AfterAll
  static void jvmStillReadsGoodFiles() {
    try (Checkpoint ck = Checkpoint.open(Fixtures.hf("tiny", "model"))) {
      assertEquals(21, ck.names().size());
      assertEquals(512 * 64, ck.readFloat("lm_head.weight").length);
    }
  }
}
