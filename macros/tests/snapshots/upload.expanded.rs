#[doc(hidden)]
async fn __async_upload_upload(
    mut req: UploadRequest,
    dest: &str,
) -> Result<Receipt, UploadError> {
    req.attempt += 1;
    let receipt = client().put(dest, &req.bytes).await?;
    Ok(receipt)
}
/// Uploads a file.
#[allow(clippy::used_underscore_binding)]
pub async fn upload(req: UploadRequest, dest: &str) -> Result<Receipt, UploadError> {
    static __ASYNC_UPLOAD_SITE: ::async_upload::__private::Site = ::async_upload::__private::Site::new(
            "upload",
        )
        .with_retries(2)
        .with_timeout(::core::time::Duration::from_secs(30));
    let __call = __ASYNC_UPLOAD_SITE
        .call(&(req.id.as_str()))
        .with_bytes(req.bytes.len());
    ::async_upload::__private::execute_in_place(
            __call,
            (req, dest),
            |(req, dest)| __async_upload_upload(
                ::core::clone::Clone::clone(&*req),
                ::core::clone::Clone::clone(&*dest),
            ),
            |(req, dest)| -> Result<Receipt, UploadError> { upload_blocking(req, dest) },
        )
        .await
}
