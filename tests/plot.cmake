# plot: the chart module (tlens/plot.h) and the pictures built on it. Text boxes,
# escaping, colours, axes and legends by hand in C; every page checked again from
# the file alone by check_svg.py (Python's xml.etree: labelled axes with units, a
# legend, no overlapping texts, readable at 800 px).
tlens_c_test(test_plot plot/test_plot.c)
tlens_sh_test(plot_unit_pages plot/test_unit_pages.sh)
tlens_sh_test(plot_pictures plot/test_pictures.sh)
# TensorBoard event files (tlens/tfevents.h) read back by protobuf; skipped (77)
# without Debian's python3-protobuf and protobuf-compiler
tlens_c_test(test_tfevents plot/test_tfevents.c)
tlens_sh_test(plot_tfevents plot/test_tfevents.sh)
set_tests_properties(plot_tfevents PROPERTIES SKIP_RETURN_CODE 77)
# tlens compare: the table's numbers against the runs' files (Python's json)
tlens_sh_test(plot_compare plot/test_compare.sh)
# Every page of the tests above rendered in headless Chromium (check_render.py);
# skipped (77) without Debian's chromium
set_tests_properties(plot_unit_pages plot_pictures plot_compare PROPERTIES FIXTURES_SETUP plot_pages)
tlens_sh_test(plot_render plot/test_render.sh ${CMAKE_CURRENT_BINARY_DIR}/work)
set_tests_properties(plot_render PROPERTIES FIXTURES_REQUIRED plot_pages SKIP_RETURN_CODE 77)
