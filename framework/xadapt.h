/* xadapt: the umbrella header of libxadapt. Installed as <xadapt/xadapt.h>; every public module
 * header is also installed on its own (<xadapt/model/model.h>, ...). Link with
 * `pkg-config --cflags --libs xadapt`, or find_package(xadapt) and xadapt::xadapt_shared. */
#ifndef XADAPT_H
#define XADAPT_H

#define XADAPT_VERSION_MAJOR 0
#define XADAPT_VERSION_MINOR 1
#define XADAPT_VERSION_PATCH 0

#include "core/core.h"
#include "tensor/tensor.h"
#include "optim/optim.h"
#include "io/file.h"
#include "io/safetensors.h"
#include "io/torchbin.h"
#include "io/tensorfile.h"
#include "io/hfjson.h"
#include "tokenizer/spm.h"
#include "tokenizer/tok.h"
#include "tokenizer/wordpiece.h"
#include "model/model.h"
#include "adapters/adapters.h"
#include "compose/compose.h"
#include "heads/heads.h"
#include "hub/hub.h"
#include "data/data.h"
#include "config/config.h"
#include "eval/eval.h"
#include "train/train.h"
#include "pipeline/pipeline.h"

#endif
