// bench_cuda's paired A/B helpers (bench/paired.h): the LORA4J_BENCH_AB parser, the environment
// scope engine b is made and stepped in, the a/b order of the pairs, quantiles, the sign test and
// the pairs' summary, on values worked out by hand.
#include <cmath>
#include <cstdlib>
#include <string>
#include <vector>

#include "../bench/paired.h"
#include "test_util.h"

using namespace testutil;
using namespace lora4j::bench;

static void parser() {
  std::vector<Assignment> a;
  std::string err;
  check_true("parse: one assignment", parse_assignments("LORA4J_DOWN_DX_FOLD=0", &a, &err) &&
                                          a.size() == 1 && a[0].name == "LORA4J_DOWN_DX_FOLD" &&
                                          a[0].value == "0");
  check_true("parse: two assignments, an empty value and a value with '='",
             parse_assignments("A_1=x=y,B=", &a, &err) && a.size() == 2 && a[0].name == "A_1" &&
                 a[0].value == "x=y" && a[1].name == "B" && a[1].value.empty());
  for (const char* bad : {"", "NOEQUALS", "=1", "A=1,", "A=1,,B=2", "1A=2", "A-B=1"}) {
    err.clear();
    const bool ok = parse_assignments(bad, &a, &err);
    check_true(std::string("parse: '") + bad + "' refused with a message",
               !ok && !err.empty() && a.empty(), err);
  }
  err.clear();
  parse_assignments("A=1,oops", &a, &err);
  check_true("parse: the message names the bad entry", err.find("'oops'") != std::string::npos,
             err);
}

static void env_scope() {
  setenv("LORA4J_PAIRED_T1", "before", 1);
  unsetenv("LORA4J_PAIRED_T2");
  {
    EnvScope s({{"LORA4J_PAIRED_T1", "during"}, {"LORA4J_PAIRED_T2", "new"}});
    const char* t1 = std::getenv("LORA4J_PAIRED_T1");
    const char* t2 = std::getenv("LORA4J_PAIRED_T2");
    check_true("env: set inside the scope",
               t1 && std::string(t1) == "during" && t2 && std::string(t2) == "new");
  }
  const char* t1 = std::getenv("LORA4J_PAIRED_T1");
  check_true("env: a variable set before gets its value back", t1 && std::string(t1) == "before");
  check_true("env: a variable absent before is unset again",
             std::getenv("LORA4J_PAIRED_T2") == nullptr);
  {
    // the same name twice: the first value it had comes back
    EnvScope s({{"LORA4J_PAIRED_T1", "x"}, {"LORA4J_PAIRED_T1", "y"}});
    const char* v = std::getenv("LORA4J_PAIRED_T1");
    check_true("env: the later of two assignments of one name holds", v && std::string(v) == "y");
  }
  t1 = std::getenv("LORA4J_PAIRED_T1");
  check_true("env: one name assigned twice is restored to its first value",
             t1 && std::string(t1) == "before");
  unsetenv("LORA4J_PAIRED_T1");
}

static void stats() {
  check_true("order: a b, b a, a b", a_first(0) && !a_first(1) && a_first(2) && !a_first(3));
  check_err("quantile: median of 4 values", std::fabs(quantile({4, 1, 3, 2}, 0.5) - 2.5), 0);
  check_err("quantile: first quartile of 5 values", std::fabs(quantile({5, 1, 4, 2, 3}, 0.25) - 2),
            0);
  check_err("quantile: third quartile between neighbours",
            std::fabs(quantile({1, 2, 3, 4}, 0.75) - 3.25), 1e-15);
  check_true("quantile: empty is NaN", std::isnan(quantile({}, 0.5)));
  // two-sided sign test: 2 * P(X <= min(k, n - k)) for X ~ Binomial(n, 1/2)
  check_err("sign test: 0 of 10", std::fabs(sign_test_p(0, 10) - 2.0 / 1024), 1e-15);
  check_err("sign test: 10 of 10", std::fabs(sign_test_p(10, 10) - 2.0 / 1024), 1e-15);
  check_err("sign test: 2 of 12", std::fabs(sign_test_p(2, 12) - 2.0 * 79 / 4096), 1e-15);
  check_err("sign test: 5 of 10 is 1", std::fabs(sign_test_p(5, 10) - 1), 0);
  check_err("sign test: no pairs is 1", std::fabs(sign_test_p(0, 0) - 1), 0);
  // b 1% below a in 7 of 8 pairs, 2% above in one; one pair dropped (NaN), one tie
  std::vector<double> a = {100, 100, 100, 100, 100, 100, 100, 100, 100, NAN};
  std::vector<double> b = {99, 99, 99, 99, 99, 99, 99, 102, 100, 99};
  PairSummary s = summarize_pairs(a, b);
  check_true("pairs: the NaN pair left out", s.pairs == 9, std::to_string(s.pairs));
  check_true("pairs: b lower in 7, one tie", s.b_lower == 7 && s.ties == 1);
  check_err("pairs: median ratio", std::fabs(s.ratio - 0.99), 1e-12);
  check_err("pairs: quartiles", std::fabs(s.ratio_lo - 0.99) + std::fabs(s.ratio_hi - 0.99), 1e-12);
  check_err("pairs: sign test over the 8 untied pairs", std::fabs(s.p_sign - 2.0 * 9 / 256), 1e-15);
  check_err("pairs: medians of each side", std::fabs(s.median_a - 100) + std::fabs(s.median_b - 99),
            0);
  const PairSummary none = summarize_pairs({}, {});
  check_true("pairs: none gives NaN ratio and p 1",
             none.pairs == 0 && std::isnan(none.ratio) && none.p_sign == 1.0);
}

static void json() {
  check_true("json: a number with its decimals", json_number(0.46512, 4) == "0.4651");
  check_true("json: text without quotes, backslashes or control characters",
             json_text("A=\"x\\y\"\n") == "A= x y  " && json_text("LORA4J_X=0") == "LORA4J_X=0",
             json_text("A=\"x\\y\"\n"));
  check_true("json: NaN and infinity are null",
             json_number(NAN, 1) == "null" && json_number(INFINITY, 1) == "null");
  PairSummary s = summarize_pairs({100, 100, 100}, {99, 98, 101});
  const std::string f = pair_fields(s, "s", "b_faster", 1);
  check_true("json: one side's fields",
             f == ",\"a_s\":100.0,\"b_s\":99.0,\"ratio_s\":0.99000,\"ratio_s_q\":[0.98500,"
                  "1.00000],\"b_faster\":2,\"p_sign_s\":1.0000",
             f);
  const std::string e = pair_fields(summarize_pairs({NAN}, {NAN}), "j", "b_less_energy", 1);
  check_true("json: no energy gives nulls and zero pairs",
             e == ",\"a_j\":null,\"b_j\":null,\"ratio_j\":null,\"ratio_j_q\":[null,null],"
                  "\"b_less_energy\":0,\"p_sign_j\":1.0000",
             e);
}

int main() {
  parser();
  env_scope();
  stats();
  json();
  return finish("test_bench_paired");
}
