//! The expansion snapshot: the generated code of one representative
//! function, pretty-printed and committed, so a change to the expansion is
//! a reviewed diff.

use std::path::Path;

use quote::quote;

fn pretty(tokens: &proc_macro2::TokenStream) -> String {
    let file: syn::File = syn::parse2(tokens.clone()).expect("the expansion parses as items");
    prettyplease::unparse(&file)
}

/// Compares with the committed file; `ASYNC_UPLOAD_BLESS=1` rewrites it.
fn assert_snapshot(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots")
        .join(name);
    if std::env::var_os("ASYNC_UPLOAD_BLESS").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run with ASYNC_UPLOAD_BLESS=1 to create it",
            path.display()
        )
    });
    assert!(
        expected == actual,
        "the expansion changed; review the diff and run with ASYNC_UPLOAD_BLESS=1 to accept it\n\
         --- {}\n{expected}\n--- actual\n{actual}",
        path.display()
    );
}

#[test]
fn expansion_of_the_readme_example() {
    let args = quote! {
        retries = 2, timeout = 30, fallback = upload_blocking,
        key = req.id.as_str(), size = req.bytes.len()
    };
    let item = quote! {
        /// Uploads a file.
        pub async fn upload(mut req: UploadRequest, dest: &str) -> Result<Receipt, UploadError> {
            req.attempt += 1;
            let receipt = client().put(dest, &req.bytes).await?;
            Ok(receipt)
        }
    };
    let expanded = pretty(&crate::expand::entry(args, item));
    assert_snapshot("upload.expanded.rs", &expanded);
}

#[test]
fn expansion_of_a_method_with_a_pattern_argument() {
    let args = quote!(
        fallback = Self::put_blocking,
        name = "store.put",
        backoff = 0.25
    );
    let item = quote! {
        async fn put(self: Arc<Self>, (bucket, object): (String, String)) -> io::Result<()> {
            self.client.put(&bucket, &object).await
        }
    };
    let expanded = pretty(&crate::expand::entry(args, item));
    assert_snapshot("method.expanded.rs", &expanded);
}

#[test]
fn expansion_of_a_trait_impl_method() {
    let args = quote!(
        fallback = Self::put_blocking,
        key = tenant.as_str(),
        retries = 1
    );
    let item = quote! {
        async fn put(&self, tenant: String, mut body: Vec<u8>) -> Result<usize, StoreError> {
            body.push(b'\n');
            self.client.put(&body).await
        }
    };
    let expanded = pretty(&crate::expand::entry(args, item));
    assert_snapshot("trait_impl_method.expanded.rs", &expanded);
}

/// The input is what `#[async_trait]` 0.1 makes of
/// `async fn put(&self, tenant: String, mut body: Vec<u8>) -> Result<usize, StoreError>`
/// before the attribute on the method expands.
#[test]
fn expansion_of_an_async_trait_method() {
    let args = quote!(
        fallback = Self::put_blocking,
        key = tenant.as_str(),
        retries = 1
    );
    let item = quote! {
        fn put<'life0, 'async_trait>(
            &'life0 self,
            tenant: String,
            body: Vec<u8>,
        ) -> ::core::pin::Pin<Box<
            dyn ::core::future::Future<Output = Result<usize, StoreError>>
                + ::core::marker::Send + 'async_trait,
        >>
        where
            'life0: 'async_trait,
            Self: 'async_trait,
        {
            Box::pin(async move {
                if let ::core::option::Option::Some(__ret) =
                    ::core::option::Option::None::<Result<usize, StoreError>>
                {
                    #[allow(unreachable_code)]
                    return __ret;
                }
                let __self = self;
                let tenant = tenant;
                let mut body = body;
                let __ret: Result<usize, StoreError> = {
                    body.push(b'\n');
                    __self.client.put(&body).await
                };
                #[allow(unreachable_code)]
                __ret
            })
        }
    };
    let expanded = pretty(&crate::expand::entry(args, item));
    assert_snapshot("async_trait_method.expanded.rs", &expanded);
}

#[test]
fn a_rejected_attribute_still_emits_the_function_unchanged() {
    let item = quote! {
        async fn upload(req: Req) -> Result<(), E> { send(req).await }
    };
    let out = crate::expand::entry(quote!(retry = 2, fallback = f), item.clone()).to_string();
    assert!(out.starts_with(":: core :: compile_error !"), "{out}");
    assert!(out.contains("did you mean `retries`?"), "{out}");
    assert!(out.ends_with(&item.to_string()), "{out}");
}

#[test]
fn the_body_is_emitted_once() {
    let item = quote! {
        async fn upload(req: Req) -> Result<(), E> { unique_marker(req).await }
    };
    let out = crate::expand::entry(quote!(fallback = f), item).to_string();
    assert_eq!(out.matches("unique_marker").count(), 1, "{out}");
}
