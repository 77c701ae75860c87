// right_padded_unlabelled (src/model/layout.cpp): when a batch's key mask can be left out of the
// loss and its gradients (the CUDA engine then runs the unmasked attention kernels). Right
// padding with -100 labels from the position after the first pad on qualifies; a label a padded
// position would predict, left padding, a hole, or any mask value but 0 and 1 does not.
#include <string>
#include <vector>

#include "lora4j.h"
#include "model/engine.h"
#include "test_util.h"

using testutil::check_true;

namespace {

bool rule(const std::vector<int32_t>& mask, const std::vector<int32_t>& labels, int64_t rows) {
  lora4j_batch b{};
  b.batch = rows;
  b.seq = int64_t(mask.size()) / rows;
  b.attention_mask = mask.data();
  b.labels = labels.empty() ? nullptr : labels.data();
  return lora4j::right_padded_unlabelled(b);
}

}  // namespace

int main() {
  const int32_t X = -100;
  // row of 6: 4 tokens, 2 pads. Position 3 (the last token) predicts labels[4], a real question
  // for the loss whatever its value; positions 4 and 5 predict labels[5] and nothing.
  check_true("right padding, -100 after the first pad",
             rule({1, 1, 1, 1, 0, 0}, {X, 5, 6, 7, X, X}, 1));
  check_true("the last token's own target may be anything",
             rule({1, 1, 1, 1, 0, 0}, {X, 5, 6, 7, 9, X}, 1));
  check_true("a padded position that predicts a label keeps the mask",
             !rule({1, 1, 1, 1, 0, 0}, {X, 5, 6, 7, X, 9}, 1));
  check_true("left padding keeps the mask", !rule({0, 0, 1, 1, 1, 1}, {X, X, X, 6, 7, 8}, 1));
  check_true("a hole keeps the mask", !rule({1, 1, 0, 1, 0, 0}, {X, 5, X, X, X, X}, 1));
  check_true("a mask value other than 0 and 1 keeps the mask",
             !rule({1, 1, 1, 2, 0, 0}, {X, X, X, X, X, X}, 1));
  check_true("a row of padding only", rule({0, 0, 0}, {X, X, X}, 1));
  check_true("no labels", rule({1, 1, 0, 0}, {}, 1));
  check_true("rows with no padding and rows right-padded",
             rule({1, 1, 1, 1, /**/ 1, 1, 0, 0}, {X, 5, 6, 7, /**/ X, 8, X, X}, 2));
  check_true("one row of several labels its padding",
             !rule({1, 1, 1, 1, /**/ 1, 1, 0, 0}, {X, 5, 6, 7, /**/ X, 8, X, 4}, 2));
  return testutil::finish("test_batch_rules");
}
