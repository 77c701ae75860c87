// A minimal JSON reader for the tests (config.json, safetensors headers, reference.json).
#pragma once
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace mj {

struct Value {
  enum Kind { Null, Bool, Num, Str, Arr, Obj } kind = Null;
  bool b = false;
  double num = 0;
  std::string str;
  std::vector<Value> arr;
  std::map<std::string, Value> obj;
  const Value& operator[](const std::string& k) const {
    static Value null;
    auto it = obj.find(k);
    return it == obj.end() ? null : it->second;
  }
  bool has(const std::string& k) const { return kind == Obj && obj.count(k) && obj.at(k).kind != Null; }
};

struct Parser {
  const char* p;
  const char* e;
  void ws() { while (p < e && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')) ++p; }
  Value parse() {
    ws();
    Value v;
    if (p >= e) throw std::runtime_error("json: unexpected end");
    char c = *p;
    if (c == '{') {
      v.kind = Value::Obj;
      ++p;
      ws();
      if (*p == '}') { ++p; return v; }
      while (true) {
        ws();
        std::string k = parse().str;
        ws();
        ++p;  // ':'
        v.obj[k] = parse();
        ws();
        if (*p == ',') { ++p; continue; }
        ++p;  // '}'
        return v;
      }
    }
    if (c == '[') {
      v.kind = Value::Arr;
      ++p;
      ws();
      if (*p == ']') { ++p; return v; }
      while (true) {
        v.arr.push_back(parse());
        ws();
        if (*p == ',') { ++p; continue; }
        ++p;
        return v;
      }
    }
    if (c == '"') {
      v.kind = Value::Str;
      ++p;
      while (*p != '"') {
        if (*p == '\\') { ++p; v.str += (*p == 'n') ? '\n' : *p; ++p; continue; }
        v.str += *p++;
      }
      ++p;
      return v;
    }
    if (!strncmp(p, "null", 4)) { p += 4; return v; }
    if (!strncmp(p, "true", 4)) { p += 4; v.kind = Value::Bool; v.b = true; return v; }
    if (!strncmp(p, "false", 5)) { p += 5; v.kind = Value::Bool; return v; }
    char* end = nullptr;
    v.kind = Value::Num;
    v.num = std::strtod(p, &end);
    p = end;
    return v;
  }
};

inline Value parse(const std::string& s) {
  Parser ps{s.data(), s.data() + s.size()};
  return ps.parse();
}
inline std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error("cannot open " + path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// safetensors: tensors as fp32 (F32, F64, BF16, F16 converted) or int64 (I64) host vectors
struct Tensor {
  std::string dtype;
  std::vector<int64_t> shape;
  std::string raw;  // the bytes
  int64_t numel() const {
    int64_t n = 1;
    for (int64_t s : shape) n *= s;
    return n;
  }
  std::vector<float> f32() const {
    std::vector<float> out(static_cast<size_t>(numel()));
    for (size_t i = 0; i < out.size(); ++i) {
      if (dtype == "F32") std::memcpy(&out[i], raw.data() + 4 * i, 4);
      else if (dtype == "F64") { double d; std::memcpy(&d, raw.data() + 8 * i, 8); out[i] = float(d); }
      else if (dtype == "BF16") { uint16_t h; std::memcpy(&h, raw.data() + 2 * i, 2); uint32_t x = uint32_t(h) << 16; std::memcpy(&out[i], &x, 4); }
      else throw std::runtime_error("unsupported dtype " + dtype);
    }
    return out;
  }
  std::vector<double> f64() const {
    std::vector<double> out(static_cast<size_t>(numel()));
    if (dtype == "F64") { std::memcpy(out.data(), raw.data(), out.size() * 8); return out; }
    auto f = f32();
    for (size_t i = 0; i < out.size(); ++i) out[i] = f[i];
    return out;
  }
  std::vector<int32_t> i32() const {
    std::vector<int32_t> out(static_cast<size_t>(numel()));
    for (size_t i = 0; i < out.size(); ++i) {
      int64_t v;
      std::memcpy(&v, raw.data() + 8 * i, 8);
      out[i] = int32_t(v);
    }
    return out;
  }
};

inline std::map<std::string, Tensor> read_safetensors(const std::string& path) {
  std::string all = read_file(path);
  uint64_t hn;
  std::memcpy(&hn, all.data(), 8);
  Value h = parse(all.substr(8, hn));
  std::map<std::string, Tensor> out;
  for (auto& kv : h.obj) {
    if (kv.first == "__metadata__") continue;
    Tensor t;
    t.dtype = kv.second["dtype"].str;
    for (auto& s : kv.second["shape"].arr) t.shape.push_back(int64_t(s.num));
    int64_t a = int64_t(kv.second["data_offsets"].arr[0].num),
            b = int64_t(kv.second["data_offsets"].arr[1].num);
    t.raw = all.substr(8 + hn + uint64_t(a), uint64_t(b - a));
    out[kv.first] = std::move(t);
  }
  return out;
}

}  // namespace mj
