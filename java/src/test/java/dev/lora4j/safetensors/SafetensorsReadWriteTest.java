package dev.lora4j.safetensors;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.lora4j.Fixtures;
import dev.lora4j.model.MistralConfig;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class SafetensorsReadWriteTest {

  @TempDir Path tmp;

  /** Expected shape of every tensor of a Mistral checkpoint, from its config. */
  static long[] expectedShape(MistralConfig c, String name) {
    long h = c.hiddenSize();
    if (name.equals("model.embed_tokens.weight") || name.equals("lm_head.weight")) {
      return new long[] {c.vocabSize(), h};
    }
    if (name.equals("model.norm.weight") || name.endsWith("layernorm.weight")) {
      return new long[] {h};
    }
    if (name.endsWith("q_proj.weight")) return new long[] {c.qDim(), h};
    if (name.endsWith("k_proj.weight") || name.endsWith("v_proj.weight")) {
      return new long[] {c.kvDim(), h};
    }
    if (name.endsWith("o_proj.weight")) return new long[] {h, c.qDim()};
    if (name.endsWith("gate_proj.weight") || name.endsWith("up_proj.weight")) {
      return new long[] {c.intermediateSize(), h};
    }
    if (name.endsWith("down_proj.weight")) return new long[] {h, c.intermediateSize()};
    throw new AssertionError("unexpected tensor " + name);
  }

  @ParameterizedTest
  @ValueSource(strings = {"tiny", "tiny-sliding", "hd128"})
  void readsShardedFixtureCheckpoint(String testCase) {
    Path dir = Fixtures.hf(testCase, "model");
    MistralConfig cfg = MistralConfig.load(dir);
    try (Checkpoint ck = Checkpoint.open(dir)) {
      assertTrue(ck.isSharded());
      int layers = cfg.numHiddenLayers();
      assertEquals(3 + 9 * layers, ck.names().size());
      long params = 0;
      for (String name : ck.names()) {
        assertEquals(DType.BF16, ck.dtype(name), name);
        assertArrayEquals(expectedShape(cfg, name), ck.shape(name), name);
        ByteBuffer raw = ck.data(name);
        assertEquals(ByteOrder.LITTLE_ENDIAN, raw.order());
        float[] f = ck.readFloat(name);
        assertEquals(ck.info(name).numElements(), f.length);
        params += f.length;
        // bf16 -> float is exact: the float's bits are the bf16 bits shifted up
        for (int i = 0; i < f.length; i++) {
          assertEquals((raw.getShort(2 * i) & 0xFFFF) << 16, Float.floatToRawIntBits(f[i]));
          assertTrue(Float.isFinite(f[i]), name);
        }
      }
      // the index's metadata says how many parameters there are
      assertEquals(
          switch (testCase) {
            case "hd128" ->
                2L * 1024 * 256
                    + 256
                    + 2 * (2 * 256 + 256 * 256 + 2 * 128 * 256 + 256 * 256 + 3 * 256 * 512);
            default -> 158016L;
          },
          params);
      // the fixtures randomise the norm weights (so that a wrong norm shows): not all equal
      float[] norm = ck.readFloat("model.norm.weight");
      assertTrue(
          java.util.stream.IntStream.range(1, norm.length).anyMatch(i -> norm[i] != norm[0]),
          "norm weights differ from each other");
      float[] emb = ck.readFloat("model.embed_tokens.weight");
      double sumSq = 0;
      for (float v : emb) sumSq += v * v;
      assertTrue(sumSq / emb.length > 1e-4, "embedding is not all zeros");
    }
  }

  @Test
  void readsReferenceTensors() {
    try (SafetensorsFile f = SafetensorsFile.open(Fixtures.hf("tiny", "reference.safetensors"))) {
      assertTrue(f.metadata().isEmpty());
      TensorInfo ids = f.tensor("input_ids");
      assertEquals(DType.I64, ids.dtype());
      assertArrayEquals(new long[] {3, 24}, ids.shape());
      long[] input = f.readLong("input_ids");
      long[] mask = f.readLong("attention_mask");
      long[] labels = f.readLong("labels");
      assertEquals(72, input.length);
      for (int i = 0; i < input.length; i++) {
        assertTrue(input[i] >= 0 && input[i] < 512);
        assertTrue(mask[i] == 0 || mask[i] == 1);
        if (mask[i] == 0) assertEquals(-100, labels[i]);
      }
      // row 1 is right-padded: its mask ends in zeros
      assertEquals(0, mask[24 + 23]);
      assertEquals(1, mask[24]);
      assertArrayEquals(new int[] {3, 24}, new int[] {(int) ids.dim(0), (int) ids.dim(1)});
      TensorInfo loss = f.tensor("base.loss");
      assertEquals(DType.F32, loss.dtype());
      float baseLoss = f.readFloat("base.loss")[0];
      // an untrained 512-token model: loss close to ln(512) = 6.24
      assertTrue(baseLoss > 5.5 && baseLoss < 7.0, "base loss " + baseLoss);
      double[] losses = f.readDouble("adamw.losses");
      assertEquals(3, losses.length);
      assertTrue(losses[2] < losses[0], "training lowers the loss");
      assertEquals(f.readLong("generate.prompt")[0], input[0]);
      SafetensorsException e =
          assertThrows(SafetensorsException.class, () -> f.readLong("base.loss"));
      assertTrue(e.getMessage().contains("base.loss") && e.getMessage().contains("F32"));
    }
  }

  /** The exact bytes the Rust safetensors crate's test_serialization expects. */
  @Test
  void matchesTheReferenceSerializerByteForByte() {
    byte[] data = DType.F32.fromFloats(new float[] {0, 1, 2, 3, 4, 5});
    byte[] out =
        new SafetensorsWriter()
            .metadata(null)
            .add("attn.0", DType.F32, new long[] {1, 2, 3}, data)
            .toBytes();
    String header = "{\"attn.0\":{\"dtype\":\"F32\",\"shape\":[1,2,3],\"data_offsets\":[0,24]}}";
    assertEquals(64, out[0]);
    for (int i = 1; i < 8; i++) assertEquals(0, out[i]);
    assertEquals(header, new String(out, 8, header.length(), StandardCharsets.UTF_8));
    for (int i = 8 + header.length(); i < 72; i++) assertEquals(' ', out[i]);
    assertEquals(72 + 24, out.length);
    assertArrayEquals(data, java.util.Arrays.copyOfRange(out, 72, 96));
    // no tensors, no metadata: "{}" plus 6 spaces
    assertArrayEquals(
        new byte[] {8, 0, 0, 0, 0, 0, 0, 0, '{', '}', ' ', ' ', ' ', ' ', ' ', ' '},
        new SafetensorsWriter().metadata(null).toBytes());
  }

  /** Every fixture file, rewritten from its raw tensors, is identical to what Python wrote. */
  @Test
  void rewritingEveryFixtureFileReproducesItByteForByte() throws IOException {
    List<Path> files = new ArrayList<>();
    try (Stream<Path> s = Files.walk(Fixtures.resource("hf-reference"))) {
      s.filter(p -> p.toString().endsWith(".safetensors")).forEach(files::add);
    }
    assertEquals(3 * (1 + 2) + 4 + 4 + 16, files.size());
    for (Path p : files) {
      byte[] original = Files.readAllBytes(p);
      try (SafetensorsFile f = SafetensorsFile.open(p)) {
        SafetensorsWriter w =
            new SafetensorsWriter().metadata(f.metadata().isEmpty() ? null : f.metadata());
        for (TensorInfo t : f.tensors()) w.add(t.name(), t.dtype(), t.shape(), f.data(t.name()));
        Path copy = tmp.resolve(p.getFileName());
        w.write(copy);
        assertArrayEquals(original, Files.readAllBytes(copy), p.toString());
      }
    }
  }

  @Test
  void roundTripsEveryDtypeAndSortsLikePython() throws IOException {
    float[] vals = {0.1f, -7.25f, 3e4f, -1e-5f, 1f, 2f};
    Path file = tmp.resolve("rt.safetensors");
    new SafetensorsWriter()
        .addFloats("z.f32", DType.F32, new long[] {2, 3}, vals)
        .addFloats("a.bf16", DType.BF16, new long[] {6}, vals)
        .addFloats("m.f16", DType.F16, new long[] {3, 2}, vals)
        .addFloats("b.f64", DType.F64, new long[] {6}, vals)
        .addLongs("y.i64", DType.I64, new long[] {2}, new long[] {-100, 1L << 50})
        .addLongs("c.i32", DType.I32, new long[] {1}, new long[] {42})
        .addLongs("flag", DType.BOOL, new long[] {3}, new long[] {1, 0, 1})
        .add("empty", DType.F32, new long[] {0, 4}, new byte[0])
        .add("scalar", DType.F32, new long[] {}, DType.F32.fromFloats(new float[] {9f}))
        .write(file);
    byte[] bytes = Files.readAllBytes(file);
    long n = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).getLong();
    assertEquals(0, n % 8, "header padded to a multiple of 8");
    String header = new String(bytes, 8, (int) n, StandardCharsets.UTF_8);
    assertTrue(header.startsWith("{\"__metadata__\":{\"format\":\"pt\"},\"y.i64\":"), header);
    try (SafetensorsFile f = SafetensorsFile.open(file)) {
      assertEquals(Map.of("format", "pt"), f.metadata());
      // data order: I64, F64, F32 (by name), I32, BF16, F16, BOOL - descending dtype, then name
      assertEquals(
          List.of("y.i64", "b.f64", "empty", "scalar", "z.f32", "c.i32", "a.bf16", "m.f16", "flag"),
          f.names());
      assertArrayEquals(vals, f.readFloat("z.f32"));
      assertArrayEquals(vals, f.readFloat("b.f64"));
      assertArrayEquals(
          new float[] {0.10009765625f, -7.25f, 29952f, -1.0013580322265625e-5f, 1f, 2f},
          f.readFloat("a.bf16"));
      float[] half = f.readFloat("m.f16");
      assertEquals(30000f, half[2]);
      assertEquals(-7.25f, half[1]);
      assertArrayEquals(new long[] {-100, 1L << 50}, f.readLong("y.i64"));
      assertArrayEquals(new int[] {42}, f.readInt("c.i32"));
      assertArrayEquals(new long[] {1, 0, 1}, f.readLong("flag"));
      assertEquals(0, f.readFloat("empty").length);
      assertArrayEquals(new float[] {9f}, f.readFloat("scalar"));
      assertEquals(0, f.tensor("scalar").rank());
    }
  }

  @Test
  void writeReplacesAtomicallyAndLeavesNoTemporaryFiles() throws IOException {
    Path file = tmp.resolve("a.safetensors");
    new SafetensorsWriter().addFloats("x", DType.F32, new long[] {1}, new float[] {1}).write(file);
    new SafetensorsWriter()
        .addFloats("x", DType.F32, new long[] {2}, new float[] {2, 3})
        .write(file);
    try (SafetensorsFile f = SafetensorsFile.open(file)) {
      assertArrayEquals(new float[] {2, 3}, f.readFloat("x"));
    }
    try (Stream<Path> s = Files.list(tmp)) {
      assertEquals(List.of(file), s.toList());
    }
    // a failed write leaves the target untouched
    Path missingDir = tmp.resolve("no/such/dir/x.safetensors");
    SafetensorsException e =
        assertThrows(
            SafetensorsException.class,
            () ->
                new SafetensorsWriter()
                    .addFloats("x", DType.F32, new long[] {1}, new float[] {1})
                    .write(missingDir));
    assertTrue(e.getMessage().contains(missingDir.toString()));
  }

  @Test
  void writerRejectsInconsistentInput() {
    SafetensorsWriter w = new SafetensorsWriter();
    w.add("a", DType.F32, new long[] {2}, new byte[8]);
    SafetensorsException dup =
        assertThrows(
            SafetensorsException.class, () -> w.add("a", DType.F32, new long[] {2}, new byte[8]));
    assertTrue(dup.getMessage().contains("'a'"));
    SafetensorsException size =
        assertThrows(
            SafetensorsException.class, () -> w.add("b", DType.BF16, new long[] {3}, new byte[8]));
    assertTrue(size.getMessage().contains("'b'") && size.getMessage().contains("6 bytes"));
    assertThrows(
        SafetensorsException.class,
        () -> w.add("__metadata__", DType.F32, new long[] {0}, new byte[0]));
  }

  /**
   * A file larger than 2 GiB (sparse, so it costs no disk): tensors past 2 GiB are mapped on their
   * own, and a tensor of 2 GiB or more is read in pieces.
   */
  @Test
  void filesLargerThan2GiBAreMappedPerTensor() throws IOException {
    long big = (1L << 31) + 16;
    String json =
        "{\"big\":{\"dtype\":\"U8\",\"shape\":["
            + big
            + "],\"data_offsets\":[0,"
            + big
            + "]},\"tail\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":["
            + big
            + ","
            + (big + 8)
            + "]}}";
    byte[] h = json.getBytes(StandardCharsets.UTF_8);
    Path file = tmp.resolve("big.safetensors");
    try (RandomAccessFile raf = new RandomAccessFile(file.toFile(), "rw")) {
      ByteBuffer len = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(h.length);
      raf.write(len.array());
      raf.write(h);
      raf.setLength(8 + h.length + big + 8);
      raf.seek(8 + h.length + big);
      raf.write(DType.F32.fromFloats(new float[] {1.5f, -2f}));
    }
    try (SafetensorsFile f = SafetensorsFile.open(file)) {
      assertTrue(f.fileSize() > (1L << 31));
      assertArrayEquals(new float[] {1.5f, -2f}, f.readFloat("tail"));
      SafetensorsException e = assertThrows(SafetensorsException.class, () -> f.data("big"));
      assertTrue(e.getMessage().contains("'big'") && e.getMessage().contains(file.toString()));
      ByteBuffer piece = f.data("big", (1L << 31) + 8, 8);
      assertEquals(8, piece.remaining());
      assertEquals(0L, piece.getLong(0));
      assertThrows(SafetensorsException.class, () -> f.data("big", big - 4, 8));
    }
  }

  @Test
  void closedFileHandsOutNoMoreBuffers() {
    SafetensorsFile f =
        SafetensorsFile.open(Fixtures.hf("tiny", "adapter_init/" + "adapter_model.safetensors"));
    String name = f.names().get(0);
    ByteBuffer before = f.data(name);
    f.close();
    assertThrows(IllegalStateException.class, () -> f.data(name));
    assertFalse(before.capacity() == 0);
    f.close(); // idempotent
  }

  /** Chunk k of a tensor whose byte j is (j * 7 + 3) mod 251, for any chunk size. */
  static SafetensorsWriter.ChunkSource pattern(int chunkBytes) {
    return (chunk, out) -> {
      long start = chunk * chunkBytes;
      for (int j = 0; out.hasRemaining(); j++) out.put((byte) ((start + j) * 7 % 251 + 3));
    };
  }

  static byte[] patternBytes(int n) {
    byte[] b = new byte[n];
    for (int j = 0; j < n; j++) b[j] = (byte) ((long) j * 7 % 251 + 3);
    return b;
  }

  @Test
  void chunkedTensorsWriteTheSameFileAsBytesForAnyThreadCount() throws IOException {
    // three tensors: several chunks with a short last one, exactly one chunk, and empty
    SafetensorsWriter bytes =
        new SafetensorsWriter()
            .add("a", DType.BF16, new long[] {37, 41}, patternBytes(37 * 41 * 2))
            .add("b", DType.F32, new long[] {64}, patternBytes(256))
            .add("c", DType.F32, new long[] {0, 3}, new byte[0])
            .addFloats("d", DType.F32, new long[] {2}, new float[] {1f, 2f});
    byte[] want = bytes.toBytes();
    for (int threads : new int[] {1, 2, 5}) {
      SafetensorsWriter w =
          new SafetensorsWriter()
              .threads(threads)
              .add("a", DType.BF16, new long[] {37, 41}, 128, pattern(128))
              .add("b", DType.F32, new long[] {64}, 256, pattern(256))
              .add("c", DType.F32, new long[] {0, 3}, 8, pattern(8))
              .addFloats("d", DType.F32, new long[] {2}, new float[] {1f, 2f});
      assertArrayEquals(want, w.toBytes(), "toBytes");
      Path f = tmp.resolve("chunked-" + threads + ".safetensors");
      w.write(f);
      assertArrayEquals(want, Files.readAllBytes(f), threads + " threads");
    }
  }

  @Test
  void failingChunkLeavesNoFileAndNamesTheTarget() throws IOException {
    Path f = tmp.resolve("fails.safetensors");
    Files.write(f, new byte[] {1, 2, 3});
    SafetensorsWriter w =
        new SafetensorsWriter()
            .threads(3)
            .add(
                "a",
                DType.F32,
                new long[] {1000},
                64,
                (chunk, out) -> {
                  if (chunk == 40)
                    throw new java.io.UncheckedIOException(new IOException("source broke"));
                  while (out.hasRemaining()) out.put((byte) 0);
                });
    SafetensorsException e = assertThrows(SafetensorsException.class, () -> w.write(f));
    assertTrue(
        e.getMessage().contains(f.toAbsolutePath().toString())
            && e.getMessage().contains("source broke"),
        e.getMessage());
    assertArrayEquals(
        new byte[] {1, 2, 3}, Files.readAllBytes(f), "the old file is left as it was");
    try (Stream<Path> s = Files.list(tmp)) {
      assertEquals(List.of(f), s.toList(), "no temporary file left");
    }
    SafetensorsWriter shortFill =
        new SafetensorsWriter()
            .add("a", DType.F32, new long[] {4}, 16, (chunk, out) -> out.putInt(7));
    SafetensorsException e2 = assertThrows(SafetensorsException.class, shortFill::toBytes);
    assertTrue(e2.getMessage().contains("chunk 0 of 16 bytes was filled with 4"), e2.getMessage());
    assertThrows(
        SafetensorsException.class,
        () -> new SafetensorsWriter().add("a", DType.F32, new long[] {4}, 6, pattern(6)));
    assertThrows(IllegalArgumentException.class, () -> new SafetensorsWriter().threads(0));
  }
}
