//! Embeds the DuckDB library's directory as an rpath, so binaries and tests find the
//! prebuilt libduckdb.so that scripts/install-deps links into .deps/lib without
//! LD_LIBRARY_PATH.

fn main() {
    println!("cargo:rerun-if-env-changed=DUCKDB_LIB_DIR");
    if let Ok(dir) = std::env::var("DUCKDB_LIB_DIR") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
    }
}
