// SPDX-License-Identifier: MIT
// Everything of core.hpp, with the xtensor backend. Does not include Eigen.
#pragma once

#include "core.hpp"

#include "backend/xtensor.hpp"
