#include <catch2/catch.hpp>
#include <diffusion/core.hpp>
TEST_CASE("smoke") { REQUIRE(diffusion::tensor_backend<diffusion::reference_backend<double>>); }
