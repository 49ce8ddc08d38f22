use proc_macro::TokenStream;
#[proc_macro_attribute]
pub fn async_upload(_a: TokenStream, i: TokenStream) -> TokenStream {
    i
}
