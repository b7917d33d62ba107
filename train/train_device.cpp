// train_device.cpp: train.device -> a Device (see train_device.h).
#include "train/train_device.h"

#include <stdexcept>
#include <string>

#include "engine/backend.h"

namespace rv::train {

Device resolve_train_device(const config::TrainConfig& cfg, const dist::Communicator& comm) {
  bool gpu = false;
  if (cfg.train.device == "cuda") {
    try {
      backend::get(cuda_device(0));  // throws, saying why, without CUDA or a GPU
    } catch (const std::exception& e) {
      throw std::invalid_argument(std::string("train.device = cuda: ") + e.what() + "; use cpu or auto");
    }
    gpu = true;
  } else if (cfg.train.device == "auto" && backend::device_count(DeviceType::cuda) > 0) {
    gpu = true;
  }
  if (!gpu) return cpu_device();
  const int index = comm.world_size() > 1 ? comm.local_rank() : 0;
  const int count = backend::device_count(DeviceType::cuda);
  if (index >= count)
    throw std::invalid_argument("train.device = " + cfg.train.device + ": rank " + std::to_string(comm.rank()) +
                                " is local rank " + std::to_string(index) + " and would use GPU " +
                                std::to_string(index) + ", but this node has " + std::to_string(count) +
                                " GPU(s); start at most that many processes per node, or train.device = cpu");
  return cuda_device(index);
}

}  // namespace rv::train
