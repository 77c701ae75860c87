package dev.lora4j.bench;

import static org.junit.jupiter.api.Assertions.*;

import dev.lora4j.Device;
import dev.lora4j.nativ.Lora4jLibrary;
import dev.lora4j.nativ.NativeException;
import java.util.List;
import org.junit.jupiter.api.Test;

class OpBenchTest {
  static double relErr(float[] got, float[] ref) {
    double num = 0, den = 0;
    for (int i = 0; i < ref.length; i++) {
      double d = (double) got[i] - ref[i];
      num += d * d;
      den += (double) ref[i] * ref[i];
    }
    return Math.sqrt(num / den);
  }

  @Test
  void attentionVariantsAgreeOnTheCpu() {
    long[] dims = {1, 40, 4, 2, 16};
    try (OpBench flash = OpBench.create(Device.cpu(), "attention_bwd", "flash", dims, 3);
        OpBench mat = OpBench.create(Device.cpu(), "attention_bwd", "materialized", dims, 3)) {
      flash.run(1);
      mat.run(2);
      assertEquals(List.of("dq", "dk", "dv"), flash.outputNames());
      for (String name : flash.outputNames()) {
        float[] a = flash.output(name), b = mat.output(name);
        assertEquals(a.length, b.length);
        assertTrue(relErr(b, a) <= 1e-5, name + ": " + relErr(b, a));
      }
      OpBench.Cost c = flash.cost();
      // 2.5 x forward: 2.5 * 4 B H D S (S + 1) / 2
      assertEquals(2.5 * 4 * 1 * 4 * 16 * 40 * 41 / 2.0, c.flops(), 1e-6);
      assertTrue(c.bytes() > 0 && c.memory() > 0, c.toString());
      assertTrue(mat.cost().memory() > c.memory(), "the materialized scores take memory");
      assertEquals("attention_bwd/flash B=1 S=40 H=4 KH=2 D=16 on cpu", flash.description());
    }
  }

  @Test
  void frozenGemmVariantsOnTheCpu() {
    long[] dims = {7, 96, 40};
    try (OpBench bf16 = OpBench.create(Device.cpu(), "frozen_linear_fwd", "bf16", dims, 5);
        OpBench scratch =
            OpBench.create(Device.cpu(), "frozen_linear_fwd", "nf4-scratch", dims, 5);
        OpBench fused = OpBench.create(Device.cpu(), "frozen_linear_fwd", "nf4-fused", dims, 5)) {
      for (OpBench b : List.of(bf16, scratch, fused)) b.run(1);
      float[] y = scratch.output("y");
      assertEquals(7 * 40, y.length);
      // the CPU twin of both NF4 variants is one computation; the bf16 variant has another W
      assertArrayEquals(y, fused.output("y"));
      assertTrue(relErr(bf16.output("y"), y) > 0.1, "bf16 and NF4 weights differ");
      assertEquals(2.0 * 7 * 96 * 40, scratch.cost().flops(), 1e-6);
      assertTrue(
          scratch
              .description()
              .startsWith("frozen_linear_fwd/nf4-scratch n=7 in=96 out=40 on cpu (floors "),
          scratch.description());
    }
  }

  @Test
  void defaultShapeAndVariant() {
    try (OpBench b = OpBench.create(Device.cpu(), "swiglu_fwd", null, null, 1)) {
      b.run(3);
      assertEquals("swiglu_fwd/default n=256 I=1408 on cpu", b.description());
      assertEquals(256 * 1408, b.output("h").length);
      assertEquals(0.0, b.cost().flops());
      assertEquals(3.0 * 256 * 1408 * 4, b.cost().bytes());
    }
  }

  @Test
  void badOpIsANativeExceptionNamingIt() {
    NativeException e =
        assertThrows(
            NativeException.class,
            () -> OpBench.create(Device.cpu(), "flash_attention", null, null, 1));
    assertEquals(Lora4jLibrary.LORA4J_EINVAL, e.status());
    assertTrue(e.getMessage().contains("unknown op 'flash_attention'"), e.getMessage());
    assertTrue(e.getMessage().contains("attention_fwd"), e.getMessage());
    e =
        assertThrows(
            NativeException.class, () -> OpBench.create(Device.cpu(), "adamw", "fused", null, 1));
    assertTrue(e.getMessage().contains("variants: flat, per_tensor"), e.getMessage());
    e =
        assertThrows(
            NativeException.class,
            () -> OpBench.create(Device.cpu(), "rmsnorm_fwd", null, new long[] {4}, 1));
    assertTrue(e.getMessage().contains("takes 2 dims (n, d), got 1"), e.getMessage());
  }

  @Test
  void misuseAfterCloseAndBadArguments() {
    OpBench b = OpBench.create(Device.cpu(), "rmsnorm_bwd", "", new long[] {3, 8}, 1);
    NativeException e = assertThrows(NativeException.class, () -> b.run(0));
    assertTrue(e.getMessage().contains("iterations must be >= 1"), e.getMessage());
    assertThrows(IllegalArgumentException.class, () -> b.output("y"));
    b.close();
    b.close();
    assertThrows(IllegalStateException.class, () -> b.run(1));
  }
}
