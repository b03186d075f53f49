#pragma once
// Named adapters in insertion order, the active list and the merged list, with PEFT's
// bookkeeping rules. Unknown names are an error here (PEFT skips them silently).
#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "reference/error.hpp"

namespace qoracle {

template <class Adapter>
class AdapterRegistry {
 public:
  void add(const std::string& name, Adapter adapter) {
    if (name.empty()) throw Error("adapter name: expected a non-empty name");
    if (contains(name)) throw Error("adapter '" + name + "': already added");
    entries_.emplace_back(name, std::move(adapter));
    if (active_.empty()) active_.push_back(name);  // PEFT activates the first adapter
  }

  bool contains(const std::string& name) const {
    return std::any_of(entries_.begin(), entries_.end(), [&](const auto& e) { return e.first == name; });
  }

  const Adapter& get(const std::string& name) const {
    for (const auto& e : entries_)
      if (e.first == name) return e.second;
    throw Error("adapter '" + name + "': not found; known adapters: " + known());
  }
  Adapter& get(const std::string& name) { return const_cast<Adapter&>(std::as_const(*this).get(name)); }

  void set_active(std::vector<std::string> names) {
    for (const auto& n : names) (void)get(n);
    active_ = std::move(names);
  }
  const std::vector<std::string>& active() const { return active_; }
  // Every adapter in insertion order: f(name, adapter).
  template <class F>
  void for_each(F f) {
    for (auto& [name, adapter] : entries_) f(name, adapter);
  }

  // Names to merge: each must exist; already merged ones are skipped as PEFT does.
  std::vector<std::string> to_merge(const std::vector<std::string>& names) const {
    std::vector<std::string> out;
    for (const auto& n : names) {
      (void)get(n);
      if (std::find(merged.begin(), merged.end(), n) == merged.end()) out.push_back(n);
    }
    return out;
  }

  std::vector<std::string> merged;  // in the order they were merged

 private:
  std::string known() const {
    std::string s;
    for (const auto& e : entries_) s += (s.empty() ? "" : ", ") + e.first;
    return s.empty() ? "(none)" : s;
  }

  std::vector<std::pair<std::string, Adapter>> entries_;
  std::vector<std::string> active_;
};

}  // namespace qoracle
