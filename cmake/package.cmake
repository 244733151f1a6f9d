# The installed package: bin/modelconvert, lib/libmodelconvert.a (every area's objects in one
# archive), include/modelconvert/modelconvert.h (src/api/library.h: standard library only),
# lib/cmake/modelconvert/ (find_package(modelconvert) -> modelconvert::modelconvert) and
# lib/pkgconfig/modelconvert.pc. The outside libraries the areas link are found again by the
# config file (find_dependency) and listed in the .pc file; the table below names both for each.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

get_property(_mc_areas GLOBAL PROPERTY MC_AREAS)
set(_mc_objects "")
set(_mc_external "")
foreach(a IN LISTS _mc_areas)
  get_target_property(_type ${a} TYPE)
  if(_type STREQUAL "STATIC_LIBRARY")
    list(APPEND _mc_objects $<TARGET_OBJECTS:${a}>)
    get_target_property(_deps ${a} LINK_LIBRARIES)
  else()
    get_target_property(_deps ${a} INTERFACE_LINK_LIBRARIES)
  endif()
  foreach(d IN LISTS _deps)
    if(d AND NOT d MATCHES "^mc_")
      list(APPEND _mc_external ${d})
    endif()
  endforeach()
endforeach()
list(REMOVE_DUPLICATES _mc_external)

add_library(modelconvert_lib STATIC ${_mc_objects})
set_target_properties(modelconvert_lib PROPERTIES OUTPUT_NAME modelconvert EXPORT_NAME modelconvert)
target_link_libraries(modelconvert_lib INTERFACE ${_mc_external})
target_include_directories(modelconvert_lib INTERFACE $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)

# outside library -> find_dependency arguments | pkg-config linker flags
set(_mc_dep_Threads::Threads "Threads|-lpthread")
set(_mc_dep_nlohmann_json::nlohmann_json "nlohmann_json|")
set(_mc_dep_fmt::fmt "fmt|-lfmt")
set(_mc_dep_dl "|-ldl")
set(_mc_dep_ZLIB::ZLIB "ZLIB|-lz")
set(_mc_dep_yaml-cpp "yaml-cpp|-lyaml-cpp")
set(MC_FIND_DEPENDENCIES "")
set(MC_PC_LIBS "")
foreach(d IN LISTS _mc_external)
  if(NOT DEFINED _mc_dep_${d})
    message(FATAL_ERROR "cmake/package.cmake: add '${d}' (linked by an area) to the table of outside libraries")
  endif()
  string(REPLACE "|" ";" _row "${_mc_dep_${d}}")
  list(GET _row 0 _find)
  list(LENGTH _row _n)
  if(_find)
    string(APPEND MC_FIND_DEPENDENCIES "find_dependency(${_find})\n")
  endif()
  if(_n GREATER 1)
    list(GET _row 1 _flags)
    string(APPEND MC_PC_LIBS " ${_flags}")
  endif()
endforeach()

set(_mc_cmakedir ${CMAKE_INSTALL_LIBDIR}/cmake/modelconvert)
install(TARGETS modelconvert_lib EXPORT modelconvertTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(FILES src/api/library.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/modelconvert RENAME modelconvert.h)
install(EXPORT modelconvertTargets NAMESPACE modelconvert:: DESTINATION ${_mc_cmakedir})
file(WRITE ${CMAKE_BINARY_DIR}/package/modelconvertConfig.cmake.in
     "@PACKAGE_INIT@\ninclude(CMakeFindDependencyMacro)\n@MC_FIND_DEPENDENCIES@include(\"\${CMAKE_CURRENT_LIST_DIR}/modelconvertTargets.cmake\")\ncheck_required_components(modelconvert)\n")
configure_package_config_file(${CMAKE_BINARY_DIR}/package/modelconvertConfig.cmake.in
                              ${CMAKE_BINARY_DIR}/package/modelconvertConfig.cmake INSTALL_DESTINATION ${_mc_cmakedir})
write_basic_package_version_file(${CMAKE_BINARY_DIR}/package/modelconvertConfigVersion.cmake
                                 COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_BINARY_DIR}/package/modelconvertConfig.cmake
              ${CMAKE_BINARY_DIR}/package/modelconvertConfigVersion.cmake DESTINATION ${_mc_cmakedir})
# Relocatable (${pcfiledir}): `cmake --install --prefix P` decides the prefix after configuring.
file(RELATIVE_PATH _mc_pc_up /p/${CMAKE_INSTALL_LIBDIR}/pkgconfig /p)
string(REGEX REPLACE "/$" "" _mc_pc_up "${_mc_pc_up}")
file(WRITE ${CMAKE_BINARY_DIR}/package/modelconvert.pc.in
     "prefix=\${pcfiledir}/@_mc_pc_up@\nlibdir=\${prefix}/@CMAKE_INSTALL_LIBDIR@\nincludedir=\${prefix}/@CMAKE_INSTALL_INCLUDEDIR@\n\nName: modelconvert\nDescription: Converts LLM checkpoints between formats (C++ library)\nVersion: @PROJECT_VERSION@\nCflags: -I\${includedir}\nLibs: -L\${libdir} -lmodelconvert -lstdc++@MC_PC_LIBS@\n")
configure_file(${CMAKE_BINARY_DIR}/package/modelconvert.pc.in ${CMAKE_BINARY_DIR}/package/modelconvert.pc @ONLY)
install(FILES ${CMAKE_BINARY_DIR}/package/modelconvert.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

if(MC_BUILD_TESTS)
  # Installs into a temporary prefix, builds tests/consumer against it (find_package and
  # pkg-config) and compares what it converts with what the command line writes.
  set(_mc_consumer_flags "")
  if(MC_SANITIZE)
    set(_mc_consumer_flags "-fsanitize=address,undefined")
  endif()
  add_test(NAME InstallConsumer
           COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/tests/consumer/run.sh ${CMAKE_BINARY_DIR} "${_mc_consumer_flags}")
  set_tests_properties(InstallConsumer PROPERTIES LABELS unit TIMEOUT 300)
  # Every command with --json prints exactly one JSON document on stdout (success and failure).
  add_test(NAME JsonOutputs COMMAND python3 ${CMAKE_CURRENT_SOURCE_DIR}/tests/py/json_outputs_test.py
                                    ${CMAKE_BINARY_DIR}/modelconvert)
  set_tests_properties(JsonOutputs PROPERTIES LABELS unit TIMEOUT 300)
endif()
include(${CMAKE_CURRENT_LIST_DIR}/python.cmake)
