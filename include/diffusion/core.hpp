// SPDX-License-Identifier: MIT
// Everything in the library that names no tensor library, including the reference backend.
#pragma once

#include "core/errors.hpp"
#include "core/tensor.hpp"
#include "core/noise.hpp"
#include "core/observer.hpp"
#include "core/time_grid.hpp"

#include "backend/reference.hpp"

#include "process/concepts.hpp"

#include "model/parameterization.hpp"
#include "model/predictor.hpp"

#include "sampler/driver.hpp"
