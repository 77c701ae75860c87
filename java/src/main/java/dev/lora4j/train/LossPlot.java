package dev.lora4j.train;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.lora4j.Lora4jException;
import java.awt.BasicStroke;
import java.awt.Color;
import java.awt.Font;
import java.awt.Graphics2D;
import java.awt.RenderingHints;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import javax.imageio.ImageIO;

/** Draws the loss curve of metrics.jsonl (training loss per step, evaluation losses) as a PNG. */
public final class LossPlot {
  private LossPlot() {}

  /** Reads metrics.jsonl and writes the PNG; nothing is written when there is no step. */
  public static void write(Path metrics, Path png) {
    System.setProperty("java.awt.headless", "true");
    List<double[]> train = new ArrayList<>(), eval = new ArrayList<>(), base = new ArrayList<>();
    ObjectMapper json = new ObjectMapper();
    try {
      if (!Files.exists(metrics)) return;
      for (String line : Files.readAllLines(metrics, StandardCharsets.UTF_8)) {
        if (line.isBlank()) continue;
        JsonNode n = json.readTree(line);
        String type = n.path("type").asText();
        if (type.equals("step"))
          train.add(new double[] {n.get("step").asDouble(), n.get("loss").asDouble()});
        if (type.equals("eval")) {
          // (an evaluation of the forgetting data alone has no eval_loss: null, not a point at 0)
          if (n.path("eval_loss").isNumber()) {
            eval.add(new double[] {n.get("step").asDouble(), n.get("eval_loss").asDouble()});
          }
          if (n.get("base_eval_loss").isNumber()) {
            base.add(new double[] {n.get("step").asDouble(), n.get("base_eval_loss").asDouble()});
          }
        }
      }
    } catch (IOException e) {
      throw new Lora4jException("cannot read " + metrics + ": " + e, e);
    }
    if (train.isEmpty()) return;
    int w = 800, h = 480, left = 70, right = 20, top = 40, bottom = 50;
    BufferedImage img = new BufferedImage(w, h, BufferedImage.TYPE_INT_RGB);
    Graphics2D g = img.createGraphics();
    g.setRenderingHint(RenderingHints.KEY_ANTIALIASING, RenderingHints.VALUE_ANTIALIAS_ON);
    g.setColor(Color.WHITE);
    g.fillRect(0, 0, w, h);
    double x0 = 0, x1 = 1, y0 = Double.MAX_VALUE, y1 = -Double.MAX_VALUE;
    for (List<double[]> s : List.of(train, eval, base)) {
      for (double[] p : s) {
        if (!Double.isFinite(p[1])) continue;
        x1 = Math.max(x1, p[0]);
        y0 = Math.min(y0, p[1]);
        y1 = Math.max(y1, p[1]);
      }
    }
    if (y1 <= y0) {
      y1 = y0 + 1;
    }
    double pad = 0.05 * (y1 - y0);
    y0 -= pad;
    y1 += pad;
    g.setColor(Color.BLACK);
    g.drawLine(left, h - bottom, w - right, h - bottom);
    g.drawLine(left, top, left, h - bottom);
    g.setFont(new Font(Font.SANS_SERIF, Font.PLAIN, 12));
    for (int i = 0; i <= 4; i++) {
      double yv = y0 + (y1 - y0) * i / 4;
      int yp = (int) (h - bottom - (h - top - bottom) * (double) i / 4);
      g.drawString(String.format(Locale.ROOT, "%.3f", yv), 8, yp + 4);
      g.setColor(new Color(230, 230, 230));
      g.drawLine(left + 1, yp, w - right, yp);
      g.setColor(Color.BLACK);
      long xv = Math.round(x0 + (x1 - x0) * i / 4);
      int xp = left + (int) ((w - left - right) * (double) i / 4);
      g.drawString(Long.toString(xv), xp - 8, h - bottom + 18);
    }
    g.drawString("optimizer step", w / 2 - 40, h - 12);
    g.setFont(new Font(Font.SANS_SERIF, Font.BOLD, 14));
    g.drawString("lora4j loss", left, 24);
    double fx0 = x0, fx1 = x1, fy0 = y0, fy1 = y1;
    java.util.function.BiConsumer<List<double[]>, Color> line =
        (s, c) -> {
          g.setColor(c);
          g.setStroke(new BasicStroke(2f));
          int px = -1, py = -1;
          for (double[] p : s) {
            if (!Double.isFinite(p[1])) continue;
            int x = left + (int) ((w - left - right) * (p[0] - fx0) / (fx1 - fx0));
            int y = (int) (h - bottom - (h - top - bottom) * (p[1] - fy0) / (fy1 - fy0));
            if (px >= 0) g.drawLine(px, py, x, y);
            g.fillOval(x - 2, y - 2, 4, 4);
            px = x;
            py = y;
          }
        };
    line.accept(train, new Color(31, 119, 180));
    line.accept(eval, new Color(214, 39, 40));
    line.accept(base, new Color(127, 127, 127));
    g.setFont(new Font(Font.SANS_SERIF, Font.PLAIN, 12));
    g.setColor(new Color(31, 119, 180));
    g.drawString("train loss", w - 230, 24);
    g.setColor(new Color(214, 39, 40));
    g.drawString("eval loss", w - 160, 24);
    g.setColor(new Color(127, 127, 127));
    g.drawString("base eval", w - 90, 24);
    g.dispose();
    try {
      Path tmp = png.resolveSibling(png.getFileName() + ".tmp");
      ImageIO.write(img, "png", tmp.toFile());
      Files.move(
          tmp,
          png,
          java.nio.file.StandardCopyOption.REPLACE_EXISTING,
          java.nio.file.StandardCopyOption.ATOMIC_MOVE);
    } catch (IOException e) {
      throw new Lora4jException("cannot write " + png + ": " + e, e);
    }
  }
}
