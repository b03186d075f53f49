#pragma once
// A typed device allocation and a CUDA event that free themselves, and CUDA errors as qoracle::Error.
#include <cuda_runtime.h>

#include <memory>
#include <string>
#include <vector>

#include "reference/error.hpp"

namespace qoracle::optimized {

inline void check_cuda(cudaError_t err, const char* what) {
  if (err != cudaSuccess) throw Error(std::string(what) + ": " + cudaGetErrorString(err));
}

// host's elements to device memory (room for host.size()).
template <class T>
void upload(T* device, const std::vector<T>& host) {
  if (!host.empty())
    check_cuda(cudaMemcpy(device, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice), "cudaMemcpy to device");
}

// `count` elements from device memory (synchronizes: kernel errors surface here).
template <class T>
std::vector<T> download(const T* device, size_t count) {
  std::vector<T> host(count);
  if (count) check_cuda(cudaMemcpy(host.data(), device, count * sizeof(T), cudaMemcpyDeviceToHost), "cudaMemcpy to host");
  return host;
}

template <class T>
class DeviceBuffer {
 public:
  explicit DeviceBuffer(size_t count) : count_(count) {
    if (count_) check_cuda(cudaMalloc(&ptr_, count_ * sizeof(T)), "cudaMalloc");
  }
  ~DeviceBuffer() {
    if (ptr_) cudaFree(ptr_);
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer(DeviceBuffer&& other) noexcept : ptr_(other.ptr_), count_(other.count_) { other.ptr_ = nullptr; }
  T* get() const { return ptr_; }
  void upload(const std::vector<T>& host) {
    if (host.size() != count_)
      throw Error("upload: expected " + std::to_string(count_) + " elements, got " + std::to_string(host.size()));
    optimized::upload(ptr_, host);
  }
  std::vector<T> download() const { return optimized::download(ptr_, count_); }

 private:
  T* ptr_ = nullptr;
  size_t count_;
};

// A device allocation ordered on a stream (cudaMallocAsync from the stream's pool, freed the same
// way): after the first use the pool hands memory back without a device-wide synchronization, so
// work that allocates per call (a merge) pays microseconds, not cudaMalloc's milliseconds.
template <class T>
class StreamBuffer {
 public:
  StreamBuffer(size_t count, cudaStream_t stream) : count_(count), stream_(stream) {
    keep_pool_memory();
    if (count_) check_cuda(cudaMallocAsync(reinterpret_cast<void**>(&ptr_), count_ * sizeof(T), stream_), "cudaMallocAsync");
  }
  // The device's default pool keeps freed memory for reuse (by default it returns it at every
  // synchronization, and the next allocation pays for it again).
  static void keep_pool_memory() {
    static const bool kept = [] {
      int dev = 0;
      cudaMemPool_t pool{};
      unsigned long long keep = ~0ull;
      return cudaGetDevice(&dev) == cudaSuccess && cudaDeviceGetDefaultMemPool(&pool, dev) == cudaSuccess &&
             cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep) == cudaSuccess;
    }();
    (void)kept;
  }
  ~StreamBuffer() {
    if (ptr_) cudaFreeAsync(ptr_, stream_);
  }
  StreamBuffer(const StreamBuffer&) = delete;
  StreamBuffer& operator=(const StreamBuffer&) = delete;
  StreamBuffer(StreamBuffer&& o) noexcept : ptr_(o.ptr_), count_(o.count_), stream_(o.stream_) { o.ptr_ = nullptr; }
  T* get() const { return ptr_; }
  size_t size() const { return count_; }
  std::vector<T> download() const {
    std::vector<T> host(count_);
    if (count_) {
      check_cuda(cudaMemcpyAsync(host.data(), ptr_, count_ * sizeof(T), cudaMemcpyDeviceToHost, stream_), "cudaMemcpyAsync");
      check_cuda(cudaStreamSynchronize(stream_), "download");
    }
    return host;
  }

 private:
  T* ptr_ = nullptr;
  size_t count_;
  cudaStream_t stream_;
};

struct CudaEvent {
  cudaEvent_t e{};
  CudaEvent() { check_cuda(cudaEventCreate(&e), "cudaEventCreate"); }
  ~CudaEvent() { cudaEventDestroy(e); }
  CudaEvent(const CudaEvent&) = delete;
  CudaEvent& operator=(const CudaEvent&) = delete;
};

// Milliseconds of device time that work() (launches or copies on the default stream) takes,
// between two CUDA events; waits for it to finish.
template <class Work>
float device_milliseconds(Work work) {
  const CudaEvent start, stop;
  check_cuda(cudaEventRecord(start.e), "cudaEventRecord");
  work();
  check_cuda(cudaEventRecord(stop.e), "cudaEventRecord");
  check_cuda(cudaEventSynchronize(stop.e), "cudaEventSynchronize");
  float ms = 0;
  check_cuda(cudaEventElapsedTime(&ms, start.e, stop.e), "cudaEventElapsedTime");
  return ms;
}

// Device copies of host vectors, and buffers the device fills (count elements, uninitialized),
// alive as long as this object (for the views' pointers).
class Uploads {
 public:
  template <class T>
  const T* operator()(const std::vector<T>& v) {
    if (v.empty()) return nullptr;
    T* d = allocate<T>(v.size());
    optimized::upload(d, v);
    return d;
  }
  template <class T>
  T* allocate(size_t count) {
    if (count == 0) return nullptr;
    auto buf = std::make_shared<DeviceBuffer<T>>(count);
    keep_.push_back(buf);
    return buf->get();
  }

 private:
  std::vector<std::shared_ptr<void>> keep_;
};

}  // namespace qoracle::optimized
