// A tiny JSON parser and safetensors reader for the native tests (fixture files only:
// I32/I64/F32/F64/BF16 tensors, plain JSON configs). Throws std::runtime_error on bad input.
#pragma once

#include <cstdint>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace testutil {

struct Json {
  enum Type { NUL, BOOL, NUM, STR, ARR, OBJ } type = NUL;
  bool b = false;
  double num = 0;
  std::string str;
  std::vector<Json> arr;
  std::vector<std::pair<std::string, Json>> obj;

  bool has(const std::string& k) const {
    for (auto& kv : obj)
      if (kv.first == k) return true;
    return false;
  }
  const Json& operator[](const std::string& k) const {
    for (auto& kv : obj)
      if (kv.first == k) return kv.second;
    throw std::runtime_error("json: no key '" + k + "'");
  }
  const Json& operator[](size_t i) const { return arr.at(i); }
  bool is_null() const { return type == NUL; }

  static Json parse(const std::string& text) {
    size_t p = 0;
    Json j = parse_value(text, p);
    return j;
  }

 private:
  static void ws(const std::string& s, size_t& p) {
    while (p < s.size() && (s[p] == ' ' || s[p] == '\n' || s[p] == '\r' || s[p] == '\t')) ++p;
  }
  static std::string parse_string(const std::string& s, size_t& p) {
    if (s[p] != '"') throw std::runtime_error("json: expected string");
    ++p;
    std::string out;
    while (p < s.size() && s[p] != '"') {
      char c = s[p++];
      if (c == '\\') {
        char e = s[p++];
        switch (e) {
          case 'n':
            out += '\n';
            break;
          case 't':
            out += '\t';
            break;
          case 'r':
            out += '\r';
            break;
          case 'b':
            out += '\b';
            break;
          case 'f':
            out += '\f';
            break;
          case 'u':
            out += '?';
            p += 4;
            break;  // not needed by the fixtures
          default:
            out += e;
        }
      } else {
        out += c;
      }
    }
    ++p;
    return out;
  }
  static Json parse_value(const std::string& s, size_t& p) {
    ws(s, p);
    if (p >= s.size()) throw std::runtime_error("json: unexpected end");
    Json j;
    char c = s[p];
    if (c == '{') {
      j.type = OBJ;
      ++p;
      ws(s, p);
      if (s[p] == '}') {
        ++p;
        return j;
      }
      for (;;) {
        ws(s, p);
        std::string k = parse_string(s, p);
        ws(s, p);
        if (s[p++] != ':') throw std::runtime_error("json: expected ':'");
        j.obj.emplace_back(k, parse_value(s, p));
        ws(s, p);
        if (s[p] == ',') {
          ++p;
          continue;
        }
        if (s[p] == '}') {
          ++p;
          break;
        }
        throw std::runtime_error("json: expected ',' or '}'");
      }
    } else if (c == '[') {
      j.type = ARR;
      ++p;
      ws(s, p);
      if (s[p] == ']') {
        ++p;
        return j;
      }
      for (;;) {
        j.arr.push_back(parse_value(s, p));
        ws(s, p);
        if (s[p] == ',') {
          ++p;
          continue;
        }
        if (s[p] == ']') {
          ++p;
          break;
        }
        throw std::runtime_error("json: expected ',' or ']'");
      }
    } else if (c == '"') {
      j.type = STR;
      j.str = parse_string(s, p);
    } else if (s.compare(p, 4, "null") == 0) {
      p += 4;
    } else if (s.compare(p, 4, "true") == 0) {
      j.type = BOOL;
      j.b = true;
      p += 4;
    } else if (s.compare(p, 5, "false") == 0) {
      j.type = BOOL;
      p += 5;
    } else {
      j.type = NUM;
      size_t end = p;
      while (end < s.size() && std::strchr("+-0123456789.eE", s[end])) ++end;
      j.num = std::stod(s.substr(p, end - p));
      p = end;
    }
    return j;
  }
};

inline std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error("cannot open " + path);
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

inline Json read_json(const std::string& path) { return Json::parse(read_file(path)); }

struct Tensor {
  std::string dtype;
  std::vector<int64_t> shape;
  const uint8_t* data = nullptr;
  size_t nbytes = 0;
  int64_t numel() const {
    int64_t n = 1;
    for (int64_t s : shape) n *= s;
    return n;
  }
  // Values converted to double (any supported dtype).
  std::vector<double> as_double() const {
    std::vector<double> out(static_cast<size_t>(numel()));
    for (size_t i = 0; i < out.size(); ++i) {
      if (dtype == "F64") {
        double v;
        std::memcpy(&v, data + 8 * i, 8);
        out[i] = v;
      } else if (dtype == "F32") {
        float v;
        std::memcpy(&v, data + 4 * i, 4);
        out[i] = v;
      } else if (dtype == "I64") {
        int64_t v;
        std::memcpy(&v, data + 8 * i, 8);
        out[i] = double(v);
      } else if (dtype == "I32") {
        int32_t v;
        std::memcpy(&v, data + 4 * i, 4);
        out[i] = v;
      } else if (dtype == "BF16") {
        uint16_t h;
        std::memcpy(&h, data + 2 * i, 2);
        uint32_t bits = uint32_t(h) << 16;
        float v;
        std::memcpy(&v, &bits, 4);
        out[i] = v;
      } else
        throw std::runtime_error("unsupported dtype " + dtype);
    }
    return out;
  }
  std::vector<float> as_float() const {
    std::vector<double> d = as_double();
    return std::vector<float>(d.begin(), d.end());
  }
  std::vector<int32_t> as_int32() const {
    std::vector<double> d = as_double();
    std::vector<int32_t> out(d.size());
    for (size_t i = 0; i < d.size(); ++i) out[i] = int32_t(d[i]);
    return out;
  }
};

class Safetensors {
 public:
  explicit Safetensors(const std::string& path) : path_(path), bytes_(read_file(path)) {
    if (bytes_.size() < 8) throw std::runtime_error(path + ": too short");
    uint64_t n;
    std::memcpy(&n, bytes_.data(), 8);
    if (n > bytes_.size() - 8) throw std::runtime_error(path + ": header size out of bounds");
    Json h = Json::parse(bytes_.substr(8, size_t(n)));
    const uint8_t* base = reinterpret_cast<const uint8_t*>(bytes_.data()) + 8 + n;
    size_t avail = bytes_.size() - 8 - size_t(n);
    for (auto& kv : h.obj) {
      if (kv.first == "__metadata__") continue;
      Tensor t;
      t.dtype = kv.second["dtype"].str;
      for (auto& s : kv.second["shape"].arr) t.shape.push_back(int64_t(s.num));
      size_t a = size_t(kv.second["data_offsets"][0].num),
             b = size_t(kv.second["data_offsets"][1].num);
      if (a > b || b > avail) throw std::runtime_error(path + ": bad offsets for " + kv.first);
      t.data = base + a;
      t.nbytes = b - a;
      names_.push_back(kv.first);
      tensors_[kv.first] = t;
    }
  }
  bool has(const std::string& k) const { return tensors_.count(k) != 0; }
  const Tensor& get(const std::string& k) const {
    auto it = tensors_.find(k);
    if (it == tensors_.end()) throw std::runtime_error(path_ + ": no tensor '" + k + "'");
    return it->second;
  }
  const std::vector<std::string>& names() const { return names_; }

 private:
  std::string path_;
  std::string bytes_;
  std::vector<std::string> names_;
  std::map<std::string, Tensor> tensors_;
};

}  // namespace testutil
