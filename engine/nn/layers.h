// layers.h: every layer module of engine/nn in one include, for model code.
#pragma once
#include "engine/nn/activation.h"
#include "engine/nn/attention.h"
#include "engine/nn/containers.h"
#include "engine/nn/conv.h"
#include "engine/nn/dropout.h"
#include "engine/nn/embedding.h"
#include "engine/nn/init.h"
#include "engine/nn/linear.h"
#include "engine/nn/mlp.h"
#include "engine/nn/module.h"
#include "engine/nn/norm.h"
#include "engine/nn/sync_batch_norm.h"
