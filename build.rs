//! `embed_migrations!` reads migrations/ at compile time; without this a new
//! migration folder would not trigger a rebuild. The image build's linker
//! (.cargo/link-hot) reads .cargo/hot-functions.txt, which cargo does not
//! know about: naming it here relinks the binary when the list changes.

fn main() {
    println!("cargo:rerun-if-changed=migrations");
    println!("cargo:rerun-if-changed=.cargo/hot-functions.txt");
}
