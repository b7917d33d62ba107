// train_device.h: where a training run computes: train.device (cpu | cuda | auto) turned into a
// Device, shared by the classification trainer (trainer.cpp) and the segmentation trainer
// (seg/seg_trainer.cpp), so both refuse a missing GPU with the same message.
#pragma once
#include "engine/device.h"
#include "train/config/train_config.h"
#include "train/distributed/communicator.h"

namespace rv::train {

// train.device: cpu, cuda (cuda:0; an error naming the reason when there is none), or auto
// (cuda:0 when this build has CUDA and a GPU is present, else the CPU).
// One GPU per process: a multi-process run uses GPU `local rank` (as the NCCL communicator
// does, nccl_communicator.h); one process uses GPU 0. Throws std::invalid_argument.
Device resolve_train_device(const config::TrainConfig& cfg, const dist::Communicator& comm);

}  // namespace rv::train
